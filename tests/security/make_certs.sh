#!/bin/sh
# Makes the certificates the security tests use, with Debian's openssl:
#
#   make_certs.sh DIR
#
#   ca.pem/ca.key                 CA "taskd test CA"
#   other-ca.pem/other-ca.key     an unrelated CA
#   server.pem/server.key         signed by ca, for localhost and 127.0.0.1
#   server-other.pem/.key         signed by other-ca (the rotation target)
#   expired.pem/expired.key       signed by ca, expired yesterday
#   client.pem/client.key         client certificate CN=worker-images by ca
#   client-other.pem/.key         CN=worker-images by other-ca
set -eu
dir=${1:?usage: make_certs.sh DIR}
mkdir -p "$dir"
cd "$dir"
cat > server.ext <<'EXT'
subjectAltName = DNS:localhost, IP:127.0.0.1
extendedKeyUsage = serverAuth
EXT
cat > client.ext <<'EXT'
extendedKeyUsage = clientAuth
EXT
ca() {  # NAME CN
  openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 2 \
    -keyout "$1.key" -out "$1.pem" -subj "/CN=$2" 2>/dev/null
}
leaf() {  # NAME CN CA EXTFILE DAYS
  openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" \
    -subj "/CN=$2" 2>/dev/null
  openssl x509 -req -sha256 -in "$1.csr" -CA "$3.pem" -CAkey "$3.key" \
    -CAcreateserial -days "$5" -extfile "$4" -out "$1.pem" 2>/dev/null
  rm -f "$1.csr"
}
ca ca "taskd test CA"
ca other-ca "unrelated CA"
leaf server localhost ca server.ext 2
leaf server-other localhost other-ca server.ext 2
leaf expired localhost ca server.ext -1
leaf client worker-images ca client.ext 2
leaf client-other worker-images other-ca client.ext 2
