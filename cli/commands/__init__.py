"""The commands of `argosy`, one module each (or a few that share flags): what they
parse beyond the command line (`config`: flags > repository file > environment) and what
they print. `argosy.main` builds the command line and imports a command's module only
when that command runs. Nothing below the command layer imports this package.

    objects     cp, ls, rm, cat, stat, demo (object commands: storage flags, a Config)
    pod         init, wait, emissary (flags in pod_args, the steps in argosy.sidecar)
    repo_check  repo check (its probes in repo_probe)
    lint        lint (argosy.argo.lint does the work)
    gc          gc (the controller in argosy.gc)
"""
