# profiled_target_defaults(target): C++20 and strict warnings for our own code.
# Third-party headers come in as SYSTEM includes, so -Werror never fires on them.
function(profiled_target_defaults target)
  target_compile_features(${target} PUBLIC cxx_std_20)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wshadow -Wnon-virtual-dtor
                                           -Wno-missing-field-initializers)
  if(PROFILED_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# profiled_library(name SOURCES ... PUBLIC_DEPS ... PRIVATE_DEPS ...): one module under
# libs/<name> with its public headers in include/profiled/<name>/.
function(profiled_library name)
  cmake_parse_arguments(ARG "" "" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  add_library(profiled_${name} ${ARG_SOURCES})
  add_library(profiled::${name} ALIAS profiled_${name})
  target_include_directories(profiled_${name} PUBLIC ${CMAKE_CURRENT_SOURCE_DIR}/include
                                              PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/src)
  target_link_libraries(profiled_${name} PUBLIC ${ARG_PUBLIC_DEPS} PRIVATE ${ARG_PRIVATE_DEPS})
  profiled_target_defaults(profiled_${name})
endfunction()
