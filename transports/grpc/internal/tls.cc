// TLS files, credentials and the certificate identity; see tls.h.
#include "transports/grpc/internal/tls.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <grpc/grpc_security_constants.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "absl/strings/str_cat.h"

namespace lpc::grpc_transport {
namespace {

// The reason of OpenSSL's latest error, e.g. "no start line"; clears the
// error queue.
std::string OpenSslReason() {
  unsigned long e = ERR_peek_last_error();
  const char* reason = e == 0 ? nullptr : ERR_reason_error_string(e);
  ERR_clear_error();
  return reason != nullptr ? reason : "unknown error";
}

struct BioDeleter {
  void operator()(BIO* b) const { BIO_free(b); }
};
struct X509Deleter {
  void operator()(X509* x) const { X509_free(x); }
};
struct KeyDeleter {
  void operator()(EVP_PKEY* k) const { EVP_PKEY_free(k); }
};
using BioPtr = std::unique_ptr<BIO, BioDeleter>;
using X509Ptr = std::unique_ptr<X509, X509Deleter>;
using KeyPtr = std::unique_ptr<EVP_PKEY, KeyDeleter>;

BioPtr MemoryBio(const std::string& pem) {
  return BioPtr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

X509Ptr FirstCertificate(const std::string& pem) {
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return nullptr;
  return X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

}  // namespace

absl::StatusOr<std::string> ReadPemFile(const std::string& what,
                                        const std::string& path) {
  auto fail = [&](int err) {
    std::string message = absl::StrCat("cannot read ", what, " '", path,
                                       "': ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(message);
    if (err == EACCES) return absl::PermissionDeniedError(message);
    return absl::InvalidArgumentError(message);
  };
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return fail(errno);
  std::string out;
  char buf[16384];
  while (true) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      close(fd);
      return fail(err);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > (size_t{16} << 20)) {
      close(fd);
      return absl::InvalidArgumentError(absl::StrCat(
          what, " '", path, "' is larger than 16 MiB; not a PEM file"));
    }
  }
  close(fd);
  if (out.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "' is empty"));
  }
  return out;
}

absl::Status CheckCertificates(const std::string& what, const std::string& path,
                               const std::string& pem) {
  ERR_clear_error();
  BioPtr bio = MemoryBio(pem);
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  int count = 0;
  while (true) {
    X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (cert == nullptr) break;
    ++count;
  }
  // Running out of input ends the loop with "no start line"; anything else
  // is a certificate that did not parse.
  unsigned long e = ERR_peek_last_error();
  bool clean_end = count > 0 && (e == 0 || (ERR_GET_LIB(e) == ERR_LIB_PEM &&
                                            ERR_GET_REASON(e) ==
                                                PEM_R_NO_START_LINE));
  if (!clean_end) {
    std::string reason = OpenSslReason();
    if (count == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, " '", path, "' holds no valid PEM certificate (",
                       reason, ")"));
    }
    return absl::InvalidArgumentError(
        absl::StrCat(what, " '", path, "': certificate ", count + 1,
                     " does not parse (", reason, ")"));
  }
  ERR_clear_error();
  return absl::OkStatus();
}

absl::Status CheckKeyMatchesChain(const std::string& key_path,
                                  const std::string& key_pem,
                                  const std::string& chain_path,
                                  const std::string& chain_pem) {
  ERR_clear_error();
  BioPtr bio = MemoryBio(key_pem);
  if (bio == nullptr) return absl::ResourceExhaustedError("out of memory");
  KeyPtr key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
  if (key == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("TLS private key '", key_path,
                     "' holds no valid PEM private key (", OpenSslReason(),
                     ")"));
  }
  X509Ptr cert = FirstCertificate(chain_pem);
  if (cert == nullptr || X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("TLS private key '", key_path,
                     "' does not belong to the certificate in '", chain_path,
                     "'"));
  }
  return absl::OkStatus();
}

namespace {

// Reads and checks a certificate chain and its key.
absl::Status ReadKeyPair(const std::string& chain_path,
                         const std::string& key_path,
                         grpc::SslServerCredentialsOptions::PemKeyCertPair*
                             pair) {
  absl::StatusOr<std::string> chain =
      ReadPemFile("TLS certificate chain", chain_path);
  if (!chain.ok()) return chain.status();
  absl::Status s = CheckCertificates("TLS certificate chain", chain_path, *chain);
  if (!s.ok()) return s;
  absl::StatusOr<std::string> key = ReadPemFile("TLS private key", key_path);
  if (!key.ok()) return key.status();
  s = CheckKeyMatchesChain(key_path, *key, chain_path, *chain);
  if (!s.ok()) return s;
  pair->cert_chain = *std::move(chain);
  pair->private_key = *std::move(key);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRoots(const std::string& what,
                                      const std::string& path) {
  absl::StatusOr<std::string> roots = ReadPemFile(what, path);
  if (!roots.ok()) return roots.status();
  absl::Status s = CheckCertificates(what, path, *roots);
  if (!s.ok()) return s;
  return roots;
}

}  // namespace

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>>
MakeServerCredentials(const ServerTlsFiles& files) {
  if (files.cert_chain_file.empty() || files.private_key_file.empty()) {
    return absl::InvalidArgumentError(
        "gRPC server TLS needs both a certificate chain file and a private "
        "key file");
  }
  if (files.require_client_cert && files.client_ca_file.empty()) {
    return absl::InvalidArgumentError(
        "requiring client certificates needs a client CA file to check them "
        "against");
  }
  grpc::SslServerCredentialsOptions options(
      GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
  absl::Status s =
      ReadKeyPair(files.cert_chain_file, files.private_key_file, &pair);
  if (!s.ok()) return s;
  options.pem_key_cert_pairs.push_back(std::move(pair));
  if (!files.client_ca_file.empty()) {
    absl::StatusOr<std::string> roots =
        ReadRoots("TLS client CA file", files.client_ca_file);
    if (!roots.ok()) return roots.status();
    options.pem_root_certs = *std::move(roots);
    options.client_certificate_request =
        files.require_client_cert
            ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
            : GRPC_SSL_REQUEST_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(options);
}

absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>>
MakeChannelCredentials(const ClientTlsFiles& files) {
  if (files.root_certs_file.empty()) {
    return absl::InvalidArgumentError(
        "a gRPC client certificate needs TLS, i.e. a root certificates file");
  }
  if (files.cert_chain_file.empty() != files.private_key_file.empty()) {
    return absl::InvalidArgumentError(
        "a gRPC client certificate needs both a certificate chain file and a "
        "private key file");
  }
  grpc::SslCredentialsOptions options;
  absl::StatusOr<std::string> roots =
      ReadRoots("TLS root certificates", files.root_certs_file);
  if (!roots.ok()) return roots.status();
  options.pem_root_certs = *std::move(roots);
  if (!files.cert_chain_file.empty()) {
    grpc::SslServerCredentialsOptions::PemKeyCertPair pair;
    absl::Status s =
        ReadKeyPair(files.cert_chain_file, files.private_key_file, &pair);
    if (!s.ok()) return s;
    options.pem_cert_chain = std::move(pair.cert_chain);
    options.pem_private_key = std::move(pair.private_key);
  }
  return grpc::SslCredentials(options);
}

void FillTlsIdentity(const grpc::AuthContext& auth, PeerIdentity* peer) {
  if (!auth.IsPeerAuthenticated()) return;
  for (const grpc::string_ref& v :
       auth.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    peer->tls_common_name.assign(v.data(), v.size());
  }
  for (const grpc::string_ref& v :
       auth.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME)) {
    peer->tls_alt_names.emplace_back(v.data(), v.size());
  }
}

}  // namespace lpc::grpc_transport
