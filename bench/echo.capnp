# The echo interface of the Cap'n Proto contender: the reply carries the
# request's payload back unchanged.
@0xb4d3a0e8fdbc2510;

using Cxx = import "/capnp/c++.capnp";
$Cxx.namespace("lpc::bench::capnp_echo");

interface Echo {
  echo @0 (payload :Data) -> (payload :Data);
}
