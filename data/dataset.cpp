// The Dataset base class's defaults and the subset views (subset, class_subset).
#include "data/dataset.h"

#include <algorithm>

namespace tether::data {

std::vector<std::string> Dataset::class_names() const {
  std::vector<std::string> names;
  for (int64_t k = 0; k < num_classes(); ++k) names.push_back(std::to_string(k));
  return names;
}

namespace {

class SubsetDataset : public Dataset {
 public:
  SubsetDataset(DatasetPtr base, std::vector<int64_t> indices, std::vector<int64_t> label_map)
      : base_(std::move(base)), indices_(std::move(indices)) {
    TETHER_CHECK(base_ != nullptr, "subset of a null dataset");
    const int64_t n = base_->size();
    for (int64_t i : indices_) TETHER_CHECK(i >= 0 && i < n, "subset: index ", i, " out of range [0, ", n, ")");
    labels_.reserve(indices_.size());
    if (label_map.empty()) {
      num_classes_ = base_->num_classes();
      names_ = base_->class_names();
      for (int64_t i : indices_) labels_.push_back(base_->label(i));
      return;
    }
    num_classes_ = 1 + *std::max_element(label_map.begin(), label_map.end());
    TETHER_CHECK(num_classes_ > 0, "subset: label_map maps every label to -1");
    for (int64_t i : indices_) {
      const int64_t old = base_->label(i);
      TETHER_CHECK(old >= 0 && old < static_cast<int64_t>(label_map.size()), "subset: sample '",
                   base_->describe(i), "' has label ", old, ", outside label_map (size ", label_map.size(), ")");
      TETHER_CHECK(label_map[old] >= 0, "subset: sample '", base_->describe(i), "' has label ", old,
                   ", which label_map excludes (-1)");
      labels_.push_back(label_map[old]);
    }
    // A new class is named after the base class(es) mapped to it ("a+b" when merged).
    const std::vector<std::string> base_names = base_->class_names();
    names_.assign(num_classes_, "");
    for (size_t old = 0; old < label_map.size(); ++old) {
      if (label_map[old] < 0) continue;
      std::string& name = names_[label_map[old]];
      const std::string base_name = old < base_names.size() ? base_names[old] : std::to_string(old);
      name += (name.empty() ? "" : "+") + base_name;
    }
    for (int64_t k = 0; k < num_classes_; ++k)
      if (names_[k].empty()) names_[k] = std::to_string(k);
  }

  int64_t size() const override { return static_cast<int64_t>(indices_.size()); }
  int64_t label(int64_t i) const override { return labels_.at(i); }
  Image load(int64_t i) const override { return base_->load(indices_.at(i)); }
  std::string describe(int64_t i) const override { return base_->describe(indices_.at(i)); }
  int64_t num_classes() const override { return num_classes_; }
  std::vector<std::string> class_names() const override { return names_; }

 private:
  DatasetPtr base_;
  std::vector<int64_t> indices_, labels_;
  int64_t num_classes_ = 0;
  std::vector<std::string> names_;
};

}  // namespace

std::shared_ptr<const Dataset> subset(DatasetPtr base, std::vector<int64_t> indices, std::vector<int64_t> label_map) {
  return std::make_shared<SubsetDataset>(std::move(base), std::move(indices), std::move(label_map));
}

std::shared_ptr<const Dataset> class_subset(DatasetPtr base, const std::vector<int64_t>& classes) {
  TETHER_CHECK(base != nullptr, "class_subset of a null dataset");
  TETHER_CHECK(!classes.empty(), "class_subset: no classes given");
  const int64_t k = base->num_classes();
  std::vector<int64_t> label_map(k, -1);
  for (size_t j = 0; j < classes.size(); ++j) {
    const int64_t c = classes[j];
    TETHER_CHECK(c >= 0 && c < k, "class_subset: class ", c, " out of range [0, ", k, ")");
    TETHER_CHECK(label_map[c] < 0, "class_subset: class ", c, " listed twice");
    label_map[c] = static_cast<int64_t>(j);
  }
  std::vector<int64_t> indices;
  for (int64_t i = 0; i < base->size(); ++i) {
    const int64_t l = base->label(i);
    if (l >= 0 && l < k && label_map[l] >= 0) indices.push_back(i);
  }
  return subset(std::move(base), std::move(indices), std::move(label_map));
}

}  // namespace tether::data
