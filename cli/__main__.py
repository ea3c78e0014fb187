from argosy.main import entry

entry()
