# Writes a C++ header holding a file's content as a raw string literal:
#   cmake -DINPUT=file -DOUTPUT=header.h -DNAME=kSymbol -P embed.cmake
# Generic: any text file (no ')_EMBED_"' sequence inside).
file(READ "${INPUT}" content)
string(FIND "${content}" ")_EMBED_\"" clash)
if(NOT clash EQUAL -1)
  message(FATAL_ERROR "${INPUT} contains the raw string delimiter )_EMBED_\"")
endif()
get_filename_component(name "${INPUT}" NAME)
set(body "// Generated from ${name} by server/embed.cmake; do not edit.\n#pragma once\ninline constexpr char ${NAME}[] = R\"_EMBED_(${content})_EMBED_\";\n")
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
endif()
if(NOT "${old}" STREQUAL "${body}")
  file(WRITE "${OUTPUT}" "${body}")
endif()
