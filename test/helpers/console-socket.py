# A console socket as an engine's shim runs one: accepts a connection on argv[1], takes the pty
# master sent with SCM_RIGHTS, says "received" on stdout, and copies what the container's
# terminal prints into argv[2] until the pty closes. (Node cannot receive file descriptors.)
import array, os, socket, sys

server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
server.bind(sys.argv[1])
server.listen(1)
print("listening", flush=True)
conn, _ = server.accept()
fds = array.array("i")
msg, ancdata, _, _ = conn.recvmsg(4096, socket.CMSG_SPACE(fds.itemsize))
for level, kind, data in ancdata:
    if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
        fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])
print("received" if fds else "no fd", flush=True)
with open(sys.argv[2], "wb") as out:
    while fds:
        try:
            chunk = os.read(fds[0], 4096)
        except OSError:
            break
        if not chunk:
            break
        out.write(chunk)
        out.flush()
