#!/bin/sh
# A hook command that goes after the host's secrets. Arguments: a host pid whose environment
# holds a secret, a secret file of the host, a TCP port where the host listens.
# It prints whatever it got and exits 7, so a caller can tell its exit status from the runner's.
echo "== env"
env
echo "== proc environ of $1"
tr '\0' '\n' < "/proc/$1/environ" 2>&1
echo "== secret file $2"
cat "$2" 2>&1
echo "== ssh key"
cat "$HOME/.ssh/id_ed25519" 2>&1
echo "== tcp 127.0.0.1:$3"
python3 -c "import socket, sys; socket.create_connection(('127.0.0.1', int(sys.argv[1])), 3).sendall(b'stolen')" "$3" 2>&1 | tail -n 1
echo "== end"
exit 7
