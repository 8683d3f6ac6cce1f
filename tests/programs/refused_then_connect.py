"""One socket, two connects: refused at 127.0.0.2 (nothing listens there),
then connected to a listener at 127.0.0.1 on the same port. Prints the
first attempt's errno and the socket's SO_KEEPALIVE and TCP_KEEPIDLE."""
import socket

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen()
port = srv.getsockname()[1]
s = socket.socket()
try:
    s.connect(("127.0.0.2", port))
    first = 0
except OSError as e:
    first = e.errno
s.connect(("127.0.0.1", port))
print(f"first={first} KA={s.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)} "
      f"IDLE={s.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)}")
