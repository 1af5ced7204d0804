# GAME_STATIC: `game` as one portable static PIE (docs/static-build.md has the why and the figures).
#
# Included from the top CMakeLists.txt right after option(GAME_STATIC), before any target or
# find_package(OpenSSL). With GAME_STATIC ON:
#  - `game` is linked with -static-pie: libssh.a, libcrypto.a, libz.a, libstdc++, libgcc and glibc
#    are all inside, and the kernel still loads it at a random address (ASLR);
#  - libssh comes from an IMPORTED target for Debian's libssh.a (find_package(libssh) only offers
#    the shared library, and libssh.pc names no private libraries) that brings libcrypto, zlib
#    and the GSSAPI stand-ins of cmake/gssapi_stub.c (Debian has no static GSSAPI library);
#  - size without cost in speed: LTO, -ffunction-sections -fdata-sections -Wl,--gc-sections,
#    packed relative relocations (DT_RELR), -Os for the asn1c-generated code only.
# Settings that must precede the targets are made here; what needs the targets (game_core, game,
# protocol_asn1, the imported `ssh`) runs at the end of the top directory (cmake_language DEFER).

# A build directory switched between GAME_STATIC ON and OFF has the other kind of libcrypto
# cached by FindOpenSSL: forget it, so that find_package(OpenSSL) looks again.
set(game_want_archive FALSE)
if(GAME_STATIC)
  set(game_want_archive TRUE)
endif()
foreach(cached OPENSSL_CRYPTO_LIBRARY OPENSSL_SSL_LIBRARY)
  set(game_is_archive FALSE)
  if("$CACHE{${cached}}" MATCHES "\\.a$")
    set(game_is_archive TRUE)
  endif()
  if(DEFINED CACHE{${cached}} AND NOT game_is_archive STREQUAL game_want_archive)
    unset(${cached} CACHE)
  endif()
endforeach()

if(NOT GAME_STATIC)
  return()
endif()

# ---- preconditions ---------------------------------------------------------------------------
if(NOT CMAKE_SYSTEM_NAME STREQUAL "Linux" OR NOT CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
  message(FATAL_ERROR "GAME_STATIC needs Linux with GCC and glibc (static-pie); configure with -DGAME_STATIC=OFF")
endif()
function(game_static_refuse_sanitizers flags)
  if(flags MATCHES "-fsanitize")
    message(FATAL_ERROR "GAME_STATIC cannot be combined with sanitizers (their runtimes are shared "
                        "libraries): configure with -DGAME_STATIC=OFF")
  endif()
endfunction()
string(TOUPPER "${CMAKE_BUILD_TYPE}" game_build_type)
game_static_refuse_sanitizers("${CMAKE_CXX_FLAGS} ${CMAKE_CXX_FLAGS_${game_build_type}} ${CMAKE_C_FLAGS} ${CMAKE_EXE_LINKER_FLAGS}")

find_library(GAME_LIBSSH_STATIC NAMES libssh.a DOC "libssh static archive (Debian: libssh-dev)")
find_library(GAME_ZLIB_STATIC NAMES libz.a DOC "zlib static archive (Debian: zlib1g-dev)")
find_path(GAME_GSSAPI_INCLUDE_DIR gssapi/gssapi.h DOC "GSSAPI header for cmake/gssapi_stub.c (Debian: libkrb5-dev)")
foreach(required GAME_LIBSSH_STATIC GAME_ZLIB_STATIC GAME_GSSAPI_INCLUDE_DIR)
  if(NOT ${required})
    message(FATAL_ERROR "GAME_STATIC: ${required} not found; run scripts/install-deps, or configure with -DGAME_STATIC=OFF")
  endif()
endforeach()
mark_as_advanced(GAME_LIBSSH_STATIC GAME_ZLIB_STATIC GAME_GSSAPI_INCLUDE_DIR)
find_package(Threads REQUIRED)  # libssh.a uses pthread mutexes

# find_package(OpenSSL) in the top CMakeLists.txt then finds libcrypto.a.
set(OPENSSL_USE_STATIC_LIBS TRUE)

# ---- compile settings for every target defined from here on ---------------------------------
# Position-independent objects for the static PIE. -fPIE, not CMake's -fPIC for libraries: the
# code goes into an executable, where nothing can be interposed (Debian's GCC defaults to it).
add_compile_options(-fPIE)

# libcrypto.a (checked at the end): src/crypto_init.cc can run the default provider under its own
# name, with trimmed tables, since its entry point is in the archive (libcrypto.so hides it).
add_compile_definitions(GAME_LIBCRYPTO_ARCHIVE=1)

# LTO of our code (Debian's archives hold plain objects, linked as they are). Every target gets
# it, the unit tests too: they link game_core's LTO objects.
option(GAME_STATIC_LTO "Link-time optimisation for the static build" ON)
if(GAME_STATIC_LTO)
  include(CheckIPOSupported)
  check_ipo_supported(RESULT game_ipo_ok OUTPUT game_ipo_output LANGUAGES C CXX)
  if(NOT game_ipo_ok)
    message(FATAL_ERROR "GAME_STATIC_LTO: the toolchain cannot do LTO (${game_ipo_output}); -DGAME_STATIC_LTO=OFF")
  endif()
  set(CMAKE_INTERPROCEDURAL_OPTIMIZATION ON)
endif()

# Each function and object in its own section, so that the linker can drop the unused ones of
# our code (and of libstdc++.a, which Debian builds that way).
option(GAME_STATIC_GC_SECTIONS "-ffunction-sections -fdata-sections -Wl,--gc-sections" ON)
if(GAME_STATIC_GC_SECTIONS)
  add_compile_options(-ffunction-sections -fdata-sections)
endif()

option(GAME_STATIC_ASN1_OS "Compile the asn1c-generated code with -Os" ON)
option(GAME_STATIC_RELR "Pack relative relocations (-z pack-relative-relocs, DT_RELR)" ON)
mark_as_advanced(GAME_STATIC_LTO GAME_STATIC_GC_SECTIONS GAME_STATIC_ASN1_OS GAME_STATIC_RELR)

# ---- what needs the targets: at the end of the top directory -----------------------------------
function(game_static_finish)
  foreach(target game game_core protocol_asn1)
    if(NOT TARGET ${target})
      message(FATAL_ERROR "GAME_STATIC: target ${target} is missing (cmake/Static.cmake expects it)")
    endif()
    foreach(property COMPILE_OPTIONS LINK_OPTIONS)
      get_target_property(value ${target} ${property})
      game_static_refuse_sanitizers("${value}")
    endforeach()
  endforeach()

  # The GSSAPI stand-ins, linked only here: a dynamic build gets the real libgssapi_krb5 through
  # libssh.so. The warnings of our own code; -Wnon-virtual-dtor is C++ only.
  add_library(game_gssapi_stub STATIC ${PROJECT_SOURCE_DIR}/cmake/gssapi_stub.c)
  set_target_properties(game_gssapi_stub PROPERTIES C_STANDARD 99)
  target_include_directories(game_gssapi_stub SYSTEM PRIVATE ${GAME_GSSAPI_INCLUDE_DIR})
  set(c_warnings ${GAME_WARNINGS})
  list(REMOVE_ITEM c_warnings -Wnon-virtual-dtor)
  target_compile_options(game_gssapi_stub PRIVATE ${c_warnings} -Wmissing-prototypes -Wstrict-prototypes)

  # libssh.a and what it needs, in link order (libssh.pc lists none of it).
  get_target_property(libssh_includes ssh INTERFACE_INCLUDE_DIRECTORIES)
  add_library(game_libssh_static STATIC IMPORTED GLOBAL)
  set_target_properties(game_libssh_static PROPERTIES
    IMPORTED_LOCATION ${GAME_LIBSSH_STATIC}
    INTERFACE_INCLUDE_DIRECTORIES "${libssh_includes}"
    INTERFACE_COMPILE_DEFINITIONS LIBSSH_STATIC=1
    INTERFACE_LINK_LIBRARIES "game_gssapi_stub;OpenSSL::Crypto;${GAME_ZLIB_STATIC};Threads::Threads")

  # Targets of this directory that link `ssh` (the shared library) get the archive instead;
  # whatever else they link is kept.
  get_property(targets DIRECTORY ${PROJECT_SOURCE_DIR} PROPERTY BUILDSYSTEM_TARGETS)
  foreach(target IN LISTS targets)
    foreach(property LINK_LIBRARIES INTERFACE_LINK_LIBRARIES)
      get_target_property(libraries ${target} ${property})
      if(libraries AND "ssh" IN_LIST libraries)
        list(TRANSFORM libraries REPLACE "^ssh$" game_libssh_static)
        set_target_properties(${target} PROPERTIES ${property} "${libraries}")
      endif()
    endforeach()
  endforeach()

  get_target_property(crypto OpenSSL::Crypto IMPORTED_LOCATION)
  if(NOT crypto MATCHES "\\.a$")
    message(FATAL_ERROR "GAME_STATIC: OpenSSL::Crypto is ${crypto}, not libcrypto.a (install libssl-dev)")
  endif()

  # The generated BER codec is on no hot path: optimised for size.
  if(GAME_STATIC_ASN1_OS)
    target_compile_options(protocol_asn1 PRIVATE -Os)
  endif()

  # -static-pie: everything inside, still loaded at a random address.
  target_link_options(game PRIVATE -static-pie)
  if(GAME_STATIC_GC_SECTIONS)
    # With LTO the code is generated at link time: the section flags must be there too.
    target_link_options(game PRIVATE -ffunction-sections -fdata-sections LINKER:--gc-sections)
  endif()
  if(GAME_STATIC_RELR)
    # DT_RELR (glibc >= 2.36 relocates a static PIE with it; binutils >= 2.38): the relative
    # relocations of a PIE (mostly libcrypto's tables) packed into a bitmap, not 24 bytes each.
    target_link_options(game PRIVATE LINKER:-z,pack-relative-relocs)
  endif()

  # `cmake --build BUILD --target game-size`: the stripped size, as the packages ship it.
  add_custom_target(game-size
    COMMAND ${CMAKE_STRIP} -o ${CMAKE_BINARY_DIR}/game.stripped $<TARGET_FILE:game>
    COMMAND stat -c "stripped static game: %s bytes (%n)" ${CMAKE_BINARY_DIR}/game.stripped
    DEPENDS game
    VERBATIM)
endfunction()
cmake_language(DEFER CALL game_static_finish)
