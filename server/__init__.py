"""`argosy serve`: Argo Server's artifact routes on Argosy's engine (aiohttp).

app       the aiohttp application: routes, errors, the handlers' order of work
auth      who the caller is: client, server or none mode; bearer token or cookie
resolve   workflow status -> artifact -> location -> driver (the Argo layer)
http      Range, conditional requests, Content-Type and -Disposition, CSP
stream    verified bytes to the client in bounded memory (`budget`)
browse    folders and archives: listings, members, whole-folder archives
upload    POST /upload-artifacts: a form field straight into a multipart upload
ops       /healthz, /readyz, /metrics, the access log
settings  the server's settings and the memory formula
"""
