# The CMake functions that cmake/bazel_targets.cmake calls, one per Bazel
# rule kind (see cmake/gen_targets.py). Every target's files and deps come
# from the Bazel BUILD files; this file only says how a Bazel rule looks in
# CMake.
#
# Layout of the build tree, which mirrors Bazel's runfiles so that tests
# find their data as they do under `bazel test`:
#   ${LPC_RUNFILES}                 = <build>/runfiles/lpc (TEST_SRCDIR/lpc)
#   ${LPC_RUNFILES}/<pkg>/<name>     every executable
#   ${LPC_RUNFILES}/<pkg>/<file>     generated files (lpcc, protoc output)
#                                    and symlinks to source data files

set(LPC_RUNFILES "${CMAKE_BINARY_DIR}/runfiles/lpc")
file(MAKE_DIRECTORY "${LPC_RUNFILES}")

# ---- The system libraries (Bazel's @system repository) ----
# lpc_system(<bazel name> CMAKE <imported targets> PKG <pkg-config modules>)
function(lpc_system name)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "CMAKE;PKG")
  set_property(GLOBAL PROPERTY LPC_SYSTEM_${name} ${ARG_CMAKE})
  set_property(GLOBAL PROPERTY LPC_SYSTEM_PKG_${name} ${ARG_PKG})
endfunction()

lpc_system(absl
  CMAKE absl::status absl::statusor absl::strings absl::str_format
        absl::synchronization absl::time absl::flat_hash_map
        absl::flat_hash_set absl::inlined_vector absl::random_random
        absl::cord
  PKG absl_status absl_statusor absl_strings absl_str_format
      absl_synchronization absl_time absl_flat_hash_map absl_flat_hash_set
      absl_inlined_vector absl_random_random absl_cord)
lpc_system(absl_flags CMAKE absl::flags absl::flags_parse absl::flags_usage
  PKG absl_flags absl_flags_parse absl_flags_usage)
lpc_system(protobuf CMAKE protobuf::libprotobuf PKG protobuf)
lpc_system(protoc_lib CMAKE protobuf::libprotoc protobuf::libprotobuf)
lpc_system(grpcpp CMAKE gRPC::grpc++ gRPC::grpc++_reflection
  PKG grpc++ grpc gpr protobuf)
lpc_system(gtest CMAKE GTest::gtest GTest::gmock)
lpc_system(gtest_main CMAKE GTest::gtest GTest::gmock GTest::gtest_main)
lpc_system(benchmark CMAKE benchmark::benchmark)
lpc_system(benchmark_main CMAKE benchmark::benchmark_main)

# Maps DEPS to CMake targets: lpc targets as they are, SYSTEM:<name> to the
# system library's imported targets. Sets <out>_LIBS in the caller.
function(_lpc_resolve_deps out)
  set(libs)
  foreach(dep IN LISTS ARGN)
    if(dep MATCHES "^SYSTEM:(.*)$")
      set(name "${CMAKE_MATCH_1}")
      get_property(known GLOBAL PROPERTY LPC_SYSTEM_${name} SET)
      if(NOT known)
        message(FATAL_ERROR "A Bazel target depends on the system library "
          "'${name}', which cmake/bazel.cmake does not map to CMake targets; "
          "add an lpc_system(${name} ...) line there.")
      endif()
      get_property(targets GLOBAL PROPERTY LPC_SYSTEM_${name})
      list(APPEND libs ${targets})
    else()
      list(APPEND libs ${dep})
    endif()
  endforeach()
  set(${out}_LIBS ${libs} PARENT_SCOPE)
endfunction()

function(_lpc_record target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "" "DEPS;HDRS;GEN_HDRS")
  set(internal)
  set(system)
  foreach(dep IN LISTS ARG_DEPS)
    if(dep MATCHES "^SYSTEM:(.*)$")
      list(APPEND system ${CMAKE_MATCH_1})
    else()
      list(APPEND internal ${dep})
    endif()
  endforeach()
  set_property(GLOBAL PROPERTY LPC_DEPS_${target} ${internal})
  set_property(GLOBAL PROPERTY LPC_SYSTEM_DEPS_${target} ${system})
  set_property(GLOBAL PROPERTY LPC_HDRS_${target} ${ARG_HDRS})
  set_property(GLOBAL PROPERTY LPC_GEN_HDRS_${target} ${ARG_GEN_HDRS})
endfunction()

set(_LPC_OPTIONS "ALWAYSLINK;TESTONLY")
set(_LPC_ONE "PACKAGE;NAME;SIZE")
set(_LPC_MULTI "SRCS;HDRS;DEPS;LINKOPTS;TAGS;ARGS;ENV;DATA")

# With LPC_TEST_FILTER, a testonly target is built only when a test that
# passes the filter (or another target that is built) needs it.
function(_lpc_testonly_on_demand target testonly)
  if(NOT testonly OR NOT LPC_TEST_FILTER)
    return()
  endif()
  set_target_properties(${target} PROPERTIES EXCLUDE_FROM_ALL ON)
  if(TARGET ${target}_objects)
    set_target_properties(${target}_objects PROPERTIES EXCLUDE_FROM_ALL ON)
  endif()
endfunction()

function(lpc_bazel_cc_library target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${_LPC_OPTIONS}" "${_LPC_ONE}" "${_LPC_MULTI}")
  if(ARG_TESTONLY AND NOT LPC_BUILD_TESTS)
    return()
  endif()
  list(TRANSFORM ARG_SRCS PREPEND "${CMAKE_SOURCE_DIR}/")
  list(TRANSFORM ARG_HDRS PREPEND "${CMAKE_SOURCE_DIR}/" OUTPUT_VARIABLE hdrs)
  _lpc_resolve_deps(deps ${ARG_DEPS})
  get_property(always GLOBAL PROPERTY LPC_ALWAYSLINK_${target})
  if(ARG_SRCS AND always)
    # alwayslink: every object is linked into every executable that needs
    # the library (lpc_bazel_finalize), as Bazel does; <target> itself
    # carries only the usage requirements.
    add_library(${target}_objects OBJECT ${ARG_SRCS} ${hdrs})
    target_link_libraries(${target}_objects PUBLIC ${deps_LIBS} ${ARG_LINKOPTS})
    add_library(${target} INTERFACE)
    target_link_libraries(${target} INTERFACE ${deps_LIBS} ${ARG_LINKOPTS})
  elseif(ARG_SRCS)
    add_library(${target} STATIC ${ARG_SRCS} ${hdrs})
    target_link_libraries(${target} PUBLIC ${deps_LIBS} ${ARG_LINKOPTS})
  else()
    add_library(${target} INTERFACE ${hdrs})
    target_link_libraries(${target} INTERFACE ${deps_LIBS} ${ARG_LINKOPTS})
  endif()
  _lpc_record(${target} DEPS ${ARG_DEPS} HDRS ${ARG_HDRS})
  _lpc_testonly_on_demand(${target} "${ARG_TESTONLY}")
endfunction()

function(_lpc_executable target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${_LPC_OPTIONS}" "${_LPC_ONE}" "${_LPC_MULTI}")
  list(TRANSFORM ARG_SRCS PREPEND "${CMAKE_SOURCE_DIR}/")
  _lpc_resolve_deps(deps ${ARG_DEPS})
  add_executable(${target} ${ARG_SRCS})
  target_link_libraries(${target} PRIVATE ${deps_LIBS} ${ARG_LINKOPTS})
  set_property(GLOBAL APPEND PROPERTY LPC_EXECUTABLES ${target})
  _lpc_record(${target} DEPS ${ARG_DEPS})
  set_target_properties(${target} PROPERTIES
    OUTPUT_NAME "${ARG_NAME}"
    RUNTIME_OUTPUT_DIRECTORY "${LPC_RUNFILES}/${ARG_PACKAGE}")
  # Source data files appear in the runfiles tree as symlinks; generated
  # ones and executables are written there already.
  foreach(item IN LISTS ARG_DATA)
    if(item MATCHES "^SRC:(.*)$")
      set(link "${LPC_RUNFILES}/${CMAKE_MATCH_1}")
      get_filename_component(dir "${link}" DIRECTORY)
      file(MAKE_DIRECTORY "${dir}")
      file(CREATE_LINK "${CMAKE_SOURCE_DIR}/${CMAKE_MATCH_1}" "${link}"
        SYMBOLIC)
    elseif(NOT item MATCHES "^GEN:")
      add_dependencies(${target} ${item})
    endif()
  endforeach()
endfunction()

function(lpc_bazel_cc_binary target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${_LPC_OPTIONS}" "${_LPC_ONE}" "${_LPC_MULTI}")
  if(ARG_TESTONLY AND NOT LPC_BUILD_TESTS)
    return()
  endif()
  _lpc_executable(${ARGV})
  _lpc_testonly_on_demand(${target} "${ARG_TESTONLY}")
endfunction()

# A cc_test becomes an executable and a ctest test named <pkg>/<name>, run
# by cmake/run_test.sh as Bazel runs it: in the runfiles root, with
# TEST_SRCDIR, a fresh TEST_TMPDIR and the target's args and env. Its Bazel
# tags become ctest labels.
function(lpc_bazel_cc_test target)
  if(NOT LPC_BUILD_TESTS)
    return()
  endif()
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${_LPC_OPTIONS}" "${_LPC_ONE}" "${_LPC_MULTI}")
  set(name "${ARG_PACKAGE}/${ARG_NAME}")
  if(LPC_TEST_FILTER AND NOT name MATCHES "${LPC_TEST_FILTER}")
    return()
  endif()
  _lpc_executable(${ARGV})
  add_test(NAME ${name}
    COMMAND "${CMAKE_SOURCE_DIR}/cmake/run_test.sh" "${LPC_RUNFILES}"
      "$<TARGET_FILE:${target}>" ${ARG_ARGS})
  set(timeout 300)
  if(ARG_SIZE STREQUAL "small")
    set(timeout 60)
  elseif(ARG_SIZE STREQUAL "large")
    set(timeout 900)
  endif()
  set(labels ${ARG_TAGS})
  if(NOT labels)
    set(labels unit)
  endif()
  set_tests_properties(${name} PROPERTIES
    TIMEOUT ${timeout}
    LABELS "${labels}"
    ENVIRONMENT "LPC_TEST=1;${ARG_ENV}")
  if("exclusive" IN_LIST ARG_TAGS)
    set_tests_properties(${name} PROPERTIES RUN_SERIAL TRUE)
  endif()
endfunction()

# lpc_cc_library (codegen/lpc.bzl): lpcc's output for the .idl files, as a
# library. Imports resolve against the source root, as in Bazel.
function(lpc_bazel_idl_library target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${_LPC_OPTIONS}" "${_LPC_ONE}" "${_LPC_MULTI}")
  if(ARG_TESTONLY AND NOT LPC_BUILD_TESTS)
    return()
  endif()
  set(lib_deps)
  set(gen_deps)
  foreach(dep IN LISTS ARG_DEPS)
    if(dep MATCHES "^SYSTEM:" OR dep STREQUAL "lpc_runtime")
      continue()  # added by lpc_generate
    endif()
    list(APPEND gen_deps ${dep})
  endforeach()
  if(NOT "lpc_runtime" IN_LIST ARG_DEPS)
    # The runtime's own .idl (lpc_cc_library's `runtime` argument): its
    # code links what the Bazel target names, not lpc_runtime, which links it.
    _lpc_resolve_deps(LPC_GENERATED ${ARG_DEPS})
  endif()
  list(TRANSFORM ARG_SRCS PREPEND "${CMAKE_SOURCE_DIR}/")
  lpc_generate(${target} ${ARG_SRCS}
    IMPORT_DIR "${CMAKE_SOURCE_DIR}" OUT_DIR "${LPC_RUNFILES}"
    DEPS ${gen_deps})
  _lpc_record(${target} DEPS ${ARG_DEPS} GEN_HDRS ${ARG_HDRS})
  _lpc_testonly_on_demand(${target} "${ARG_TESTONLY}")
endfunction()

# lpc_cc_proto_library (third_party/system/proto.bzl): protoc's C++ for the
# .proto files, through FindProtobuf's protobuf_generate().
function(lpc_bazel_proto_library target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "${_LPC_OPTIONS}" "${_LPC_ONE}" "${_LPC_MULTI}")
  list(TRANSFORM ARG_SRCS PREPEND "${CMAKE_SOURCE_DIR}/" OUTPUT_VARIABLE protos)
  _lpc_resolve_deps(deps ${ARG_DEPS})
  add_library(${target} STATIC)
  protobuf_generate(TARGET ${target} LANGUAGE cpp PROTOS ${protos}
    IMPORT_DIRS "${CMAKE_SOURCE_DIR}" PROTOC_OUT_DIR "${LPC_RUNFILES}")
  target_link_libraries(${target} PUBLIC ${deps_LIBS})
  set(gen_hdrs)
  foreach(proto IN LISTS ARG_SRCS)
    string(REGEX REPLACE "\\.proto$" ".pb.h" hdr "${proto}")
    list(APPEND gen_hdrs "${hdr}")
  endforeach()
  _lpc_record(${target} DEPS ${ARG_DEPS} GEN_HDRS ${gen_hdrs})
endfunction()

# The lpc targets that `roots` need, roots included, in <out>.
function(lpc_closure out)
  set(seen)
  set(todo ${ARGN})
  while(todo)
    list(POP_FRONT todo t)
    if(t IN_LIST seen)
      continue()
    endif()
    list(APPEND seen ${t})
    get_property(deps GLOBAL PROPERTY LPC_DEPS_${t})
    list(APPEND todo ${deps})
  endwhile()
  set(${out} ${seen} PARENT_SCOPE)
endfunction()

# The alwayslink libraries (listed before any target, so that the order of
# the generated file does not matter). Linking them with --whole-archive
# would put the same archive twice on a link line when two paths lead to it,
# and define its symbols twice; their objects are linked instead.
function(lpc_bazel_alwayslink)
  foreach(target IN LISTS ARGN)
    set_property(GLOBAL PROPERTY LPC_ALWAYSLINK_${target} TRUE)
  endforeach()
endfunction()

# The object files of the alwayslink libraries among the targets that the
# given ones need, for an executable or library that links them all.
function(lpc_alwayslink_objects out)
  lpc_closure(closure ${ARGN})
  set(objects)
  foreach(t IN LISTS closure)
    if(TARGET ${t}_objects)
      list(APPEND objects "$<TARGET_OBJECTS:${t}_objects>")
    endif()
  endforeach()
  set(${out} ${objects} PARENT_SCOPE)
endfunction()

function(lpc_bazel_finalize)
  get_property(executables GLOBAL PROPERTY LPC_EXECUTABLES)
  foreach(exe IN LISTS executables)
    get_property(deps GLOBAL PROPERTY LPC_DEPS_${exe})
    lpc_alwayslink_objects(objects ${deps})
    target_sources(${exe} PRIVATE ${objects})
  endforeach()
endfunction()
