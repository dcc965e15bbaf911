// Test helper: a small ImageFolder of real PNG files cut from Debian's Fashion-MNIST, for the
// end-to-end tests of `tether train` (tests/train/*.cpp).
#pragma once
#include <doctest/doctest.h>
#include <stb_image_write.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "data/dataset.h"

namespace tether::testing {

// root/{train,val}/<class>/<i>.png from Fashion-MNIST classes 0 (T-shirt), 1 (trouser), 7 (sneaker).
inline void write_fashion_folder(const std::string& root, int train_per_class, int val_per_class) {
  const auto ds = data::fashion_mnist("train");
  const std::vector<std::pair<int64_t, std::string>> classes{{0, "tshirt"}, {1, "trouser"}, {7, "sneaker"}};
  std::map<int64_t, int> taken;
  for (int64_t i = 0; i < ds->size(); ++i) {
    const int64_t label = ds->label(i);
    auto it = std::find_if(classes.begin(), classes.end(), [&](const auto& c) { return c.first == label; });
    if (it == classes.end() || taken[label] >= train_per_class + val_per_class) continue;
    const int n = taken[label]++;
    const std::string dir = root + (n < train_per_class ? "/train/" : "/val/") + it->second;
    std::filesystem::create_directories(dir);
    const data::Image img = ds->load(i);
    std::vector<uint8_t> gray(img.height * img.width);
    for (int p = 0; p < img.height * img.width; ++p) gray[p] = static_cast<uint8_t>(img.plane(0)[p] * 255.0f + 0.5f);
    REQUIRE(stbi_write_png((dir + "/" + std::to_string(n) + ".png").c_str(), img.width, img.height, 1, gray.data(),
                           img.width) != 0);
  }
}

}  // namespace tether::testing
