#pragma once
// OpenSSL's libcrypto, for SHA-256 of image blobs and layer streams (EVP digests use SHA-NI/AVX2 where the CPU
// has them).
#include <openssl/evp.h>
