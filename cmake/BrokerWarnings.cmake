# One warning set for every target of ours; -Werror in CI.
add_library(broker_warnings INTERFACE)
target_compile_options(broker_warnings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Wconversion -Wsign-conversion
  -Wno-sign-conversion)
if(CMAKE_CXX_COMPILER_ID MATCHES "Clang")
  target_compile_options(broker_warnings INTERFACE -Wthread-safety)
endif()
if(BROKER_WERROR)
  target_compile_options(broker_warnings INTERFACE -Werror)
endif()
