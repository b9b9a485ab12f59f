// TLS for the gRPC transport: reading and checking PEM files, building
// gRPC credentials from them, and the caller's certificate identity.
//
// Every file is read and parsed here, before gRPC sees it, so that a missing
// file or a bad certificate is an lpc error naming the file and the reason
// (gRPC itself would only log a line and fail to bind or to connect).
//
// Thread safety: free functions, thread-safe.
#ifndef LPC_TRANSPORTS_GRPC_INTERNAL_TLS_H_
#define LPC_TRANSPORTS_GRPC_INTERNAL_TLS_H_

#include <memory>
#include <string>
#include <string_view>

#include <grpcpp/security/auth_context.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>

#include "absl/status/statusor.h"
#include "runtime/call_context.h"

namespace lpc::grpc_transport {

// PEM files of the server side.
struct ServerTlsFiles {
  std::string cert_chain_file;
  std::string private_key_file;
  std::string client_ca_file;  // Empty: clients are not asked for a cert.
  bool require_client_cert = false;
};

// PEM files of the client side.
struct ClientTlsFiles {
  std::string root_certs_file;   // Required for TLS.
  std::string cert_chain_file;   // Optional, with private_key_file.
  std::string private_key_file;
};

// The whole file. NOT_FOUND when it does not exist, PERMISSION_DENIED when
// it may not be read, INVALID_ARGUMENT for any other error or an empty
// file; the message names `what` and the path.
absl::StatusOr<std::string> ReadPemFile(const std::string& what,
                                        const std::string& path);

// INVALID_ARGUMENT unless `pem` holds at least one certificate and nothing
// else that fails to parse. `what` and `path` only name it in the message.
absl::Status CheckCertificates(const std::string& what, const std::string& path,
                               const std::string& pem);

// INVALID_ARGUMENT unless `key_pem` holds a private key that belongs to the
// first certificate of `chain_pem`.
absl::Status CheckKeyMatchesChain(const std::string& key_path,
                                  const std::string& key_pem,
                                  const std::string& chain_path,
                                  const std::string& chain_pem);

// TLS server credentials from the files, each read and checked.
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
MakeServerCredentials(const ServerTlsFiles& files);

// TLS channel credentials from the files, each read and checked.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const ClientTlsFiles& files);

// Copies the verified client certificate's names from `auth` into `peer`
// (tls_common_name, tls_alt_names). Nothing when the peer is not
// authenticated.
void FillTlsIdentity(const grpc::AuthContext& auth, PeerIdentity* peer);

}  // namespace lpc::grpc_transport

#endif  // LPC_TRANSPORTS_GRPC_INTERNAL_TLS_H_
