# Warnings for our own targets only (never global flags): call m3vdb_warnings(target).
function(m3vdb_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
endfunction()

# Sanitizers for every target of the build (a separate build directory): e.g.
#   -DM3VDB_SANITIZE=address,undefined   or   -DM3VDB_SANITIZE=thread
set(M3VDB_SANITIZE "" CACHE STRING "Sanitizers to build with (address,undefined | thread)")
if(M3VDB_SANITIZE)
  add_compile_options($<$<COMPILE_LANGUAGE:CXX,C>:-fsanitize=${M3VDB_SANITIZE}> $<$<COMPILE_LANGUAGE:CXX,C>:-fno-omit-frame-pointer>
                      $<$<COMPILE_LANGUAGE:CXX,C>:-fno-sanitize-recover=undefined>)
  add_link_options(-fsanitize=${M3VDB_SANITIZE})
endif()
