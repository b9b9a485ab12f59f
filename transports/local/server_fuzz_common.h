// What the server-side fuzz targets share beyond the client
// (server_fuzz_client.h): the dispatcher, requests and bind requests built
// from the input, and the fd check that ends every input.
#ifndef LPC_TRANSPORTS_LOCAL_SERVER_FUZZ_COMMON_H_
#define LPC_TRANSPORTS_LOCAL_SERVER_FUZZ_COMMON_H_

#include <string>

#include "runtime/server.h"
#include "transports/local/server_fuzz_client.h"

namespace lpc::local::fuzz {

// A server (never started) with lpc.test.Raw and lpc.test.Streams
// (stream_test_service.h) registered: the dispatcher of every input.
Dispatcher* TestDispatcher();

// A bind request payload: lpc.test.Raw (or, with the top two bits of the
// input's first byte set, lpc.test.Streams) with its uuid and version, or
// with names, uuids and versions from the input.
std::string MakeBindPayload(Input& in);

// For a record type byte in [200, 240): a stream record (STREAM_OPEN,
// STREAM_MESSAGE, HALF_CLOSE, WINDOW_UPDATE, or STREAM_FINISH in the wrong
// direction) with a payload of its kind from the input, windows and
// credits of any value included. False for other bytes (nothing read).
bool MakeStreamRecord(uint8_t type_byte, Input& in, MessageType* type,
                      std::string* payload);

// A payload of a size class the input picks: inline, just past the inline
// limit, a few KiB (data area or memfd), or up to 64 KiB (memfd).
std::string MakePayload(Input& in);

// Aborts, naming `target`, unless the process has `before` descriptors
// open again within two seconds (a descriptor the server closes on a thread
// of its own may take a moment).
void ExpectFdCount(const char* target, int before);

}  // namespace lpc::local::fuzz

#endif  // LPC_TRANSPORTS_LOCAL_SERVER_FUZZ_COMMON_H_
