"""A connection kept under a duplicate descriptor after the original is
closed (socket.dup(), then close()); the program then sets its own idle on
the duplicate. Prints the socket's TCP_KEEPIDLE and TCP_USER_TIMEOUT."""
import socket
import sys

s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
d = s.dup()
s.close()
d.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 600)
print(f"IDLE={d.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE)} UT={d.getsockopt(socket.IPPROTO_TCP, 18)}")
