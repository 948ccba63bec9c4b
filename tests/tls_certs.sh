#!/usr/bin/env bash
# Throwaway certificates for the TLS tests:  tests/tls_certs.sh DIR
#
#   ca.pem ca.key            the test CA
#   server.pem server.key    the broker: localhost and 127.0.0.1 (SANs), by the CA
#   client.pem client.key    a client certificate, by the CA
#   other-ca.pem             a CA that signed none of these
#   wronghost.pem .key       by the CA, but for elsewhere.example only
#   expired.pem .key         by the CA, for 127.0.0.1, expired in 2020
#
# Debian's openssl only; keys are unencrypted (rabbitmq-c cannot read
# encrypted ones).  DIR is created (mode 0700) and reused.
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 DIR" >&2; exit 64; }
dir=$1
mkdir -p "$dir"
chmod 700 "$dir"
cd "$dir"
quiet() { "$@" >/dev/null 2>openssl.err || { cat openssl.err >&2; exit 1; }; }

# A CA: NAME.pem and NAME.key.
ca() {
    quiet openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 30 \
        -keyout "$1.key" -out "$1.pem" -subj "/CN=$2" \
        -addext basicConstraints=critical,CA:true -addext keyUsage=critical,keyCertSign,cRLSign
}

# A certificate NAME.pem (key NAME.key) signed by the CA, with CN and the
# subjectAltName SAN ("" for none) and extendedKeyUsage EKU.
leaf() {
    local name=$1 cn=$2 san=$3 eku=$4
    quiet openssl req -newkey rsa:2048 -nodes -sha256 -keyout "$name.key" -out "$name.csr" \
        -subj "/CN=$cn"
    {
        echo "basicConstraints = CA:false"
        echo "extendedKeyUsage = $eku"
        [ -z "$san" ] || echo "subjectAltName = $san"
    } >"$name.ext"
    quiet openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
        -days 30 -sha256 -extfile "$name.ext" -out "$name.pem"
    rm -f "$name.csr" "$name.ext"
}

ca ca "warren test CA"
ca other-ca "some other CA"
rm -f other-ca.key
leaf server localhost "DNS:localhost,IP:127.0.0.1" serverAuth
leaf client "warren test client" "" clientAuth
leaf wronghost elsewhere.example "DNS:elsewhere.example" serverAuth

# Expired: `openssl x509 -days` cannot go back in time; `openssl ca` can
# set both dates.
mkdir -p expired-ca
: >expired-ca/index.txt
echo 1000 >expired-ca/serial
cat >expired-ca/ca.cnf <<EOF2
[ca]
default_ca = test
[test]
database = expired-ca/index.txt
serial = expired-ca/serial
new_certs_dir = expired-ca
certificate = ca.pem
private_key = ca.key
default_md = sha256
policy = any
copy_extensions = copy
unique_subject = no
[any]
commonName = supplied
EOF2
quiet openssl req -newkey rsa:2048 -nodes -sha256 -keyout expired.key -out expired.csr \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -addext extendedKeyUsage=serverAuth
quiet openssl ca -batch -config expired-ca/ca.cnf -in expired.csr -out expired.pem \
    -startdate 20200101000000Z -enddate 20200201000000Z
rm -rf expired.csr expired-ca ca.srl openssl.err
chmod 600 ./*.key
