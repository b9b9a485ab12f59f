#!/bin/bash
# gRPC's production features as a stock Python gRPC client sees them: health,
# reflection, TLS and mTLS (certificates made here with the openssl CLI), and
# the errors a server prints for bad TLS files.
# Usage: python_features_test.sh <protoc> <interop_server> <features_client.py>
#                                <health.proto> <reflection.proto> <whoami_client>
set -euo pipefail
source "$PWD/transports/grpc/interop/server_lib.sh"

protoc="$PWD/$1"
server="$PWD/$2"
client="$PWD/$3"
health_proto="$PWD/$4"
reflection_proto="$PWD/$5"
whoami="$PWD/$6"
python=/usr/bin/python3

# Socket paths are limited to 107 bytes: relative paths in TEST_TMPDIR.
cd "$TEST_TMPDIR"
gen="$TEST_TMPDIR/gen"
mkdir -p "$gen"
protos_root="${health_proto%/grpc/health/v1/health.proto}"
"$protoc" -I "$protos_root" --python_out="$gen" \
  grpc/health/v1/health.proto grpc/reflection/v1alpha/reflection.proto

# Certificates: a CA, a server certificate for the name lpc.test, and a
# client certificate with a common name and two alternative names.
certs="$TEST_TMPDIR/certs"
mkdir -p "$certs"
ec=(-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes)
openssl req -x509 "${ec[@]}" -keyout "$certs/ca.key" -out "$certs/ca.pem" \
  -days 2 -subj "/CN=lpc test CA" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -addext "keyUsage=critical,keyCertSign,cRLSign" 2> /dev/null
make_cert() {  # name subject extensions
  openssl req "${ec[@]}" -keyout "$certs/$1.key" -out "$certs/$1.csr" \
    -subj "$2" 2> /dev/null
  printf '%s\n' "$3" > "$certs/$1.ext"
  openssl x509 -req -in "$certs/$1.csr" -CA "$certs/ca.pem" \
    -CAkey "$certs/ca.key" -CAcreateserial -days 2 \
    -extfile "$certs/$1.ext" -out "$certs/$1.pem" 2> /dev/null
}
make_cert server "/CN=lpc.test" \
  "subjectAltName=DNS:lpc.test
extendedKeyUsage=serverAuth"
make_cert client "/CN=client-one" \
  "subjectAltName=DNS:client-one.example,URI:spiffe://lpc.test/client-one
extendedKeyUsage=clientAuth"
printf -- '-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n' \
  > "$certs/garbage.pem"

# The servers: plain gRPC with health and reflection, TLS, and mTLS.
cat > features.textproto << EOF_CONFIG
server {
  name: "plain"
  grpc_address: "unix:plain.sock"
  grpc { health_service: true reflection: true }
}
server {
  name: "tls"
  grpc_address: "unix:tls.sock"
  grpc {
    tls_cert_chain_file: "$certs/server.pem"
    tls_private_key_file: "$certs/server.key"
  }
}
server {
  name: "mtls"
  grpc_address: "unix:mtls.sock"
  grpc {
    tls_cert_chain_file: "$certs/server.pem"
    tls_private_key_file: "$certs/server.key"
    tls_client_ca_file: "$certs/ca.pem"
    tls_require_client_cert: true
  }
}
EOF_CONFIG

# Bad TLS files: the server refuses to start and says why.
expect_start_error() {  # cert key expected-text
  cat > bad.textproto << EOF_BAD
server {
  name: "bad"
  grpc_address: "unix:bad.sock"
  grpc { tls_cert_chain_file: "$1" tls_private_key_file: "$2" }
}
EOF_BAD
  if LPC_CONFIG=bad.textproto "$server" < /dev/null > bad.out 2> bad.err; then
    echo "FAIL: server started with cert $1, key $2" >&2; exit 1
  fi
  if ! grep -qF -- "$3" bad.err; then
    echo "FAIL: want '$3' in:" >&2; cat bad.err >&2; exit 1
  fi
  echo "bad TLS file refused: $(cat bad.err)"
}
expect_start_error "$certs/missing.pem" "$certs/server.key" \
  "cannot read TLS certificate chain '$certs/missing.pem': No such file or directory"
expect_start_error "$certs" "$certs/server.key" \
  "cannot read TLS certificate chain '$certs': Is a directory"
expect_start_error "$certs/garbage.pem" "$certs/server.key" \
  "TLS certificate chain '$certs/garbage.pem' holds no valid PEM certificate"
expect_start_error "$certs/server.pem" "$certs/garbage.pem" \
  "TLS private key '$certs/garbage.pem' holds no valid PEM private key"
expect_start_error "$certs/server.pem" "$certs/client.key" \
  "TLS private key '$certs/client.key' does not belong to the certificate in '$certs/server.pem'"

rm -f plain.sock tls.sock mtls.sock
start_interop_server env LPC_CONFIG=features.textproto "$server"

# lpc's own client, set up by config files: TLS, mTLS, mTLS without a
# certificate, and a bad root file.
client_config() {  # file target extra-grpc-fields
  cat > "$1" << EOF_CLIENT
endpoint {
  service: "lpc.interop.Greeter"
  target: "$2"
  grpc {
    tls_root_certs_file: "$certs/ca.pem"
    tls_target_name_override: "lpc.test"
    $3
  }
}
EOF_CLIENT
}
client_config tls_client.textproto grpc:unix:tls.sock ""
client_config mtls_client.textproto grpc:unix:mtls.sock \
  "tls_cert_chain_file: \"$certs/client.pem\" tls_private_key_file: \"$certs/client.key\""
client_config nocert_client.textproto grpc:unix:mtls.sock ""
sed "s#$certs/ca.pem#$certs/garbage.pem#" tls_client.textproto \
  > badroot_client.textproto
who=$(LPC_CONFIG=tls_client.textproto "$whoami")
echo "lpc client over TLS, the handler sees: $who"
[[ "$who" == "grpc unix:" ]] || { echo "FAIL: TLS peer '$who'" >&2; exit 1; }
who=$(LPC_CONFIG=mtls_client.textproto "$whoami")
echo "lpc client over mTLS, the handler sees: $who"
want="tls_cn=client-one tls_san=client-one.example,spiffe://lpc.test/client-one"
[[ "$who" == *"$want" ]] || { echo "FAIL: mTLS peer '$who'" >&2; exit 1; }
if LPC_CONFIG=nocert_client.textproto "$whoami" 2> nocert.err; then
  echo "FAIL: the mTLS server answered an lpc client without a certificate" >&2
  exit 1
fi
grep -q "^whoami_client: UNAVAILABLE" nocert.err ||
  { echo "FAIL: no-cert client:" >&2; cat nocert.err >&2; exit 1; }
echo "lpc client without a certificate: $(cat nocert.err)"
if LPC_CONFIG=badroot_client.textproto "$whoami" 2> badroot.err; then
  echo "FAIL: a client with a garbage root file connected" >&2; exit 1
fi
grep -qF "TLS root certificates '$certs/garbage.pem' holds no valid PEM certificate" \
  badroot.err || { echo "FAIL: bad root:" >&2; cat badroot.err >&2; exit 1; }
echo "lpc client with a bad root file: $(cat badroot.err)"

# The client checks everything and ends with the drain: it sends SIGTERM
# to the server (this script's child, by pid) while a call is in flight.
"$python" "$client" "$gen" "$certs" "$server_pid"

# The server exits by itself once drained.
for _ in $(seq 1 300); do  # At most 30 s.
  kill -0 "$server_pid" 2> /dev/null || break
  sleep 0.1
done
wait "$server_pid"
