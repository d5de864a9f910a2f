#ifndef BROKER_EXPORT_H
#define BROKER_EXPORT_H
/* Symbols of the public API are exported; everything else stays hidden (-fvisibility=hidden). */
#if defined(_WIN32)
#define BROKER_EXPORT __declspec(dllexport)
#elif defined(__cplusplus)
/* The standard attribute form may follow [[nodiscard]] in a class head. */
#define BROKER_EXPORT [[gnu::visibility("default")]]
#else
#define BROKER_EXPORT __attribute__((visibility("default")))
#endif
#endif
