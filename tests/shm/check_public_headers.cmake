# cmake -P check_public_headers.cmake -DROOT=<source dir>
# The public headers (what a later `cmake --install` ships: shm/include/shmbus and
# persist/include/shmbus, shmbus/detail/ excepted) hold no internals: they include no
# detail/ header, no internal header of shm/src or persist/src, no <atomic>, and
# name none of the internal types (StreamControl, StreamMapping, std::atomic).
file(GLOB_RECURSE headers ${ROOT}/shm/include/shmbus/*.h ${ROOT}/persist/include/shmbus/*.h)
set(bad "")
set(n 0)
foreach(h IN LISTS headers)
  if(h MATCHES "/shmbus/detail/")
    continue()
  endif()
  math(EXPR n "${n} + 1")
  file(STRINGS ${h} code REGEX "^[^/]*(StreamControl|StreamMapping|std::atomic)")  # outside comments
  foreach(l IN LISTS code)
    string(APPEND bad "${h}: ${l}\n")
  endforeach()
  file(STRINGS ${h} lines REGEX "^[ \t]*#[ \t]*include")
  foreach(l IN LISTS lines)
    if(l MATCHES "shmbus/detail/" OR l MATCHES "<atomic>" OR
       NOT l MATCHES "[<\"]shmbus/" AND l MATCHES "\"")
      string(APPEND bad "${h}: ${l}\n")
    endif()
  endforeach()
endforeach()
if(n LESS 5)
  message(FATAL_ERROR "found only ${n} public headers under ${ROOT}: wrong ROOT?")
endif()
if(bad)
  message(FATAL_ERROR "public headers include internals:\n${bad}")
endif()
message(STATUS "${n} public headers, no internals")
