// TEMPORARY: a minimal Pipeline (and a make_train_pipeline that says it is missing) so the
// loader builds and its tests run before data/transforms.cpp lands. Delete at merge.
#include "data/transforms.h"

namespace tether::data {

Pipeline& Pipeline::add(std::shared_ptr<const Transform> step) {
  steps_.push_back(std::move(step));
  return *this;
}

std::vector<Image> Pipeline::run(Image img, Generator& gen) const {
  std::vector<Image> images{std::move(img)};
  for (const auto& step : steps_) {
    std::vector<Image> next;
    for (Image& im : images) {
      if (step->views() > 1) {
        for (Image& v : step->expand(std::move(im), gen)) next.push_back(std::move(v));
      } else {
        next.push_back(step->apply(std::move(im), gen));
      }
    }
    images = std::move(next);
  }
  return images;
}

int Pipeline::views() const {
  int n = 1;
  for (const auto& step : steps_) n *= step->views();
  return n;
}

std::string Pipeline::describe() const {
  std::string s;
  for (const auto& step : steps_) s += (s.empty() ? "" : ", ") + step->describe();
  return "[" + s + "]";
}

Pipeline make_train_pipeline(const TransformOptions&) { TETHER_FAIL("make_train_pipeline: transforms not merged yet"); }

}  // namespace tether::data
