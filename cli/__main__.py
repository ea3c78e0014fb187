import sys

from argosy.main import main

sys.exit(main())
