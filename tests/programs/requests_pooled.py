"""Two requests on one pooled `requests.Session` connection; prints the
pooled socket's options as JSON.

    requests_pooled.py PORT    (an HTTP/1.1 keep-alive server on 127.0.0.1)
"""
import json
import sys

import requests

from sockopts import options

s = requests.Session()
url = f"http://127.0.0.1:{sys.argv[1]}/"
r1 = s.get(url, stream=True)
first_port = r1.raw._connection.sock.getsockname()
assert r1.text == "hello\n"
r2 = s.get(url, stream=True)
sk = r2.raw._connection.sock
assert sk.getsockname() == first_port  # the same pooled connection
print(json.dumps(options(sk)))
