# lpc_generate(): the CMake twin of Bazel's lpc_cc_library (codegen/lpc.bzl).
#
#   lpc_generate(<target> <file.idl>...
#                [IMPORT_DIR <dir>]   # imports resolve here; default: the
#                                     # current source directory
#                [OUT_DIR <dir>]      # default: the current binary directory
#                [DEPS <targets>...]) # lpc_generate targets of imported .idl
#
# Runs lpcc once per .idl file and makes <target>, a static library of the
# generated C++ that links lpc. For an .idl file at a/b/foo.idl under
# IMPORT_DIR, include "a/b/foo.lpc.h"; the .proto for gRPC clients is
# written to <OUT_DIR>/a/b/foo.proto. An .idl file that lpcc rejects fails
# the build with lpcc's file:line:col diagnostics.
#
# Used by lpc's own build and, installed, by lpcConfig.cmake. The caller
# sets LPC_LPCC (the lpcc executable target) and LPC_GENERATED_LIBS (what
# the generated code links).
function(lpc_generate target)
  cmake_parse_arguments(PARSE_ARGV 1 ARG "" "IMPORT_DIR;OUT_DIR" "DEPS")
  if(NOT ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "lpc_generate(${target}): no .idl files given")
  endif()
  if(NOT ARG_IMPORT_DIR)
    set(ARG_IMPORT_DIR "${CMAKE_CURRENT_SOURCE_DIR}")
  endif()
  if(NOT ARG_OUT_DIR)
    set(ARG_OUT_DIR "${CMAKE_CURRENT_BINARY_DIR}")
  endif()
  get_filename_component(import_dir "${ARG_IMPORT_DIR}" ABSOLUTE)

  # lpcc searches the import directories of DEPS too, and reruns when one
  # of their .idl files changes.
  set(include_flags -I "${import_dir}")
  set(dep_idls)
  foreach(dep IN LISTS ARG_DEPS)
    if(TARGET ${dep})
      get_target_property(dirs ${dep} LPC_IMPORT_DIRS)
      get_target_property(idls ${dep} LPC_IDLS)
      if(dirs)
        foreach(dir IN LISTS dirs)
          if(NOT dir STREQUAL import_dir)
            list(APPEND include_flags -I "${dir}")
          endif()
        endforeach()
        list(APPEND dep_idls ${idls})
      endif()
    endif()
  endforeach()

  set(all_idls)
  foreach(idl IN LISTS ARG_UNPARSED_ARGUMENTS)
    get_filename_component(abs "${idl}" ABSOLUTE)
    list(APPEND all_idls "${abs}")
  endforeach()

  set(sources)
  set(headers)
  foreach(abs IN LISTS all_idls)
    if(NOT abs MATCHES "\\.idl$")
      message(FATAL_ERROR "lpc_generate(${target}): ${abs} is not an .idl file")
    endif()
    file(RELATIVE_PATH rel "${import_dir}" "${abs}")
    if(rel MATCHES "^\\.\\./")
      message(FATAL_ERROR "lpc_generate(${target}): ${abs} is not under "
        "IMPORT_DIR ${import_dir}")
    endif()
    string(REGEX REPLACE "\\.idl$" "" stem "${rel}")
    set(out "${ARG_OUT_DIR}/${stem}")
    add_custom_command(
      OUTPUT "${out}.pb.h" "${out}.pb.cc" "${out}.lpc.h" "${out}.lpc.cc"
             "${out}.proto"
      COMMAND ${LPC_LPCC} ${include_flags} "--cpp_out=${ARG_OUT_DIR}"
              "--proto_out=${ARG_OUT_DIR}" "${rel}"
      WORKING_DIRECTORY "${import_dir}"
      DEPENDS ${LPC_LPCC} ${all_idls} ${dep_idls}
      COMMENT "lpcc ${rel}"
      VERBATIM)
    list(APPEND sources "${out}.pb.cc" "${out}.lpc.cc")
    list(APPEND headers "${out}.pb.h" "${out}.lpc.h")
  endforeach()

  add_library(${target} STATIC ${sources} ${headers})
  target_include_directories(${target} PUBLIC "$<BUILD_INTERFACE:${ARG_OUT_DIR}>")
  target_link_libraries(${target} PUBLIC ${LPC_GENERATED_LIBS} ${ARG_DEPS})
  target_compile_features(${target} PUBLIC cxx_std_20)
  set(dirs "${import_dir}")
  foreach(flag IN LISTS include_flags)
    if(NOT flag STREQUAL "-I")
      list(APPEND dirs "${flag}")
    endif()
  endforeach()
  list(REMOVE_DUPLICATES dirs)
  set_target_properties(${target} PROPERTIES
    LPC_IMPORT_DIRS "${dirs}"
    LPC_IDLS "${all_idls};${dep_idls}")
endfunction()
