"""The compiler options that every lpc library and tool carries itself.

lpc is C++20. Its libraries, lpcc and the code lpc_cc_library generates
compile with these options whatever the building workspace's own flags, so a
workspace that depends on lpc needs no .bazelrc line for lpc. (lpc's public
headers, which the workspace's own code includes, need only C++17.)
"""

LPC_COPTS = ["-std=c++20"]
