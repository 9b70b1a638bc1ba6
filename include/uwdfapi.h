/* How the public headers bracket their declarations (a port header; not in
 * the WDK). UWDF_BEGIN_DECLS/UWDF_END_DECLS give them C linkage in a C++
 * program and default visibility: libuwdf is built with -fvisibility=hidden,
 * so what the public headers declare is exactly what libuwdf.so exports
 * (tests/check_exports.py holds the library to that). */
#ifndef UWDF_UWDFAPI_H
#define UWDF_UWDFAPI_H

#ifdef __cplusplus
#define UWDF_BEGIN_DECLS extern "C" { _Pragma("GCC visibility push(default)")
#define UWDF_END_DECLS _Pragma("GCC visibility pop") }
#else
#define UWDF_BEGIN_DECLS _Pragma("GCC visibility push(default)")
#define UWDF_END_DECLS _Pragma("GCC visibility pop")
#endif

#endif
