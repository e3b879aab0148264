# Warnings for our own targets only (never global flags): call m3vdb_warnings(target).
function(m3vdb_warnings target)
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
endfunction()
