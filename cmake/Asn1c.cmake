# Generates C code for asn1/Protocol.asn1 with Debian's asn1c and builds it, with only the runtime
# skeletons the schema needs, into the static library `protocol_asn1`.
#
# asn1c 0.9.28 has no output-directory flag and always writes a `converter-sample.c` with a main():
# it runs in a scratch directory under the build tree, and the source list is read from the
# Makefile.am.sample it writes, which names exactly the skeletons this schema uses.
find_program(ASN1C_EXECUTABLE asn1c REQUIRED)

set(ASN1_SCHEMA ${PROJECT_SOURCE_DIR}/asn1/Protocol.asn1)
set(ASN1_OUT ${CMAKE_BINARY_DIR}/asn1c)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${ASN1_SCHEMA})

# asn1c writes into a scratch directory; only files whose contents changed are copied into
# ASN1_OUT, so that re-running CMake (every `scripts/test` does) does not rebuild everything that
# includes the generated headers.
set(asn1_scratch ${CMAKE_BINARY_DIR}/asn1c-scratch)
file(REMOVE_RECURSE ${asn1_scratch})
file(MAKE_DIRECTORY ${asn1_scratch} ${ASN1_OUT})
execute_process(
  COMMAND ${ASN1C_EXECUTABLE} -fcompound-names -fno-include-deps ${ASN1_SCHEMA}
  WORKING_DIRECTORY ${asn1_scratch}
  RESULT_VARIABLE asn1c_result
  OUTPUT_VARIABLE asn1c_output
  ERROR_VARIABLE asn1c_output)
if(NOT asn1c_result EQUAL 0)
  message(FATAL_ERROR "asn1c failed on ${ASN1_SCHEMA}:\n${asn1c_output}")
endif()
file(WRITE ${asn1_scratch}/asn_debug_off.h "#define ASN_DEBUG(...) ((void)0)\n")
file(GLOB asn1_generated RELATIVE ${asn1_scratch} ${asn1_scratch}/*)
file(GLOB asn1_stale RELATIVE ${ASN1_OUT} ${ASN1_OUT}/*)
list(REMOVE_ITEM asn1_stale ${asn1_generated})
foreach(name IN LISTS asn1_stale)
  file(REMOVE_RECURSE ${ASN1_OUT}/${name})
endforeach()
foreach(name IN LISTS asn1_generated)
  file(COPY_FILE ${asn1_scratch}/${name} ${ASN1_OUT}/${name} ONLY_IF_DIFFERENT)
endforeach()
file(REMOVE_RECURSE ${asn1_scratch})

file(READ ${ASN1_OUT}/Makefile.am.sample asn1_makefile)
string(REGEX MATCHALL "[A-Za-z0-9_-]+\\.c" asn1_all_c "${asn1_makefile}")
set(asn1_sources)
foreach(src IN LISTS asn1_all_c)
  if(NOT src STREQUAL "converter-sample.c")
    list(APPEND asn1_sources ${ASN1_OUT}/${src})
  endif()
endforeach()
list(REMOVE_DUPLICATES asn1_sources)

add_library(protocol_asn1 STATIC ${asn1_sources})
# The generated code and skeletons are not ours: compiled as C with warnings off (see README).
set_target_properties(protocol_asn1 PROPERTIES C_STANDARD 99 POSITION_INDEPENDENT_CODE ON)
target_compile_definitions(protocol_asn1 PUBLIC _DEFAULT_SOURCE)
target_compile_options(protocol_asn1 PRIVATE -w)
# Without EMIT_ASN_DEBUG the skeletons' ASN_DEBUG is an empty function whose arguments are still
# evaluated: ber_tlv_tag_string() snprintf()s every tag of every PDU for nobody (about a third of
# the client's CPU per request, docs/PERFORMANCE.md). asn_internal.h keeps a prior definition.
target_compile_options(protocol_asn1 PRIVATE -include ${ASN1_OUT}/asn_debug_off.h)
target_include_directories(protocol_asn1 SYSTEM PUBLIC ${ASN1_OUT})

# asn1c 0.9.28's asn_INTEGER2long (INTEGER.c) accumulates a negative INTEGER by left-shifting a
# negative value: undefined in C99, but GCC and Clang document signed '<<' as two's complement
# and do not exploit it. UBSan's shift-base check would still stop every decode of a negative
# score or seq (protocol 2 decodes integers that protocol 1 never did), so only that check is
# off, for that one file of the runtime; every other check stays on everywhere.
if(GAME_SANITIZE OR GAME_FUZZ)
  set_source_files_properties(${ASN1_OUT}/INTEGER.c PROPERTIES COMPILE_OPTIONS -fno-sanitize=shift-base)
endif()
