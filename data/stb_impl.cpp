// The one translation unit that compiles stb_image's implementation (Debian's libstb-dev
// header). Only the formats tether reads are compiled in: JPEG, PNG, BMP, GIF, PNM. TGA in
// particular stays out because it has no magic number — with it, random bytes can "decode".
// Files are read by data/image.cpp, so stb's stdio entry points are not needed.
#define STB_IMAGE_IMPLEMENTATION
#define STBI_NO_STDIO
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#define STBI_NO_PSD
#define STBI_NO_TGA
#define STBI_NO_PIC

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wimplicit-fallthrough"
#include <stb_image.h>
#pragma GCC diagnostic pop
