#ifndef C_FUZZER_DRIVER_H
#define C_FUZZER_DRIVER_H

#include <stddef.h>
#include <stdint.h>

/// libFuzzer's driver (compiler-rt `FuzzerDriver.cpp`), linked in by `-sanitize=fuzzer`: parses the libFuzzer
/// flags in argv and runs `callback` on every input. The documented entry point for a program that has its own
/// `main`, which a SwiftPM executable always has (see Sources/FuzzSupport/LibFuzzer.swift).
int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
