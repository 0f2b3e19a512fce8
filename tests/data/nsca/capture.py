"""Capture what the real send_nsca sends for a fixed init packet (see README.md).

Usage: python3 capture.py METHOD LEGACY(0|1) OUT.hex
"""
import os
import socket
import struct
import subprocess
import sys
import tempfile

method, legacy, out = int(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
iv = bytes(((i * 37 + 11) & 0xFF) for i in range(128))
ts = 0x65432100

srv = socket.socket()
srv.bind(("127.0.0.1", 0))
srv.listen(1)
port = srv.getsockname()[1]

cfg = os.path.join(tempfile.mkdtemp(), "send_nsca.cfg")
with open(cfg, "w") as f:
    f.write("password=s3cr3t-password\nencryption_method=%d\n" % method)
args = ["send_nsca", "-H", "127.0.0.1", "-p", str(port), "-c", cfg]
if legacy:
    args.append("--legacy-2-7-mode")
client = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE)

conn, _ = srv.accept()
conn.settimeout(10)
conn.sendall(iv + struct.pack(">I", ts))
client.stdin.write(b"web-01\tstatsd.my_prefix\t1\tWARNING: 12 lines last published in 0.004s\n")
client.stdin.close()
data = b""
while True:
    chunk = conn.recv(65536)
    if not chunk:
        break
    data += chunk
print(client.wait(), client.stdout.read().decode().strip(), len(data))
with open(out, "w") as f:
    f.write(data.hex())
