// List files: one "relative/path label" per line (Caltech-256, MIT-67 and similar splits).
// The label is the last whitespace-separated field, so paths may contain spaces.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "data/dataset.h"

namespace tether::data {
namespace {

namespace fs = std::filesystem;

std::string trim(const std::string& s) {
  const char* space = " \t\r\n";
  const size_t a = s.find_first_not_of(space);
  if (a == std::string::npos) return "";
  return s.substr(a, s.find_last_not_of(space) - a + 1);
}

class ListFileDataset : public Dataset {
 public:
  ListFileDataset(const std::string& list_path, const std::string& image_root, int64_t num_classes) {
    std::ifstream in(list_path);
    TETHER_CHECK(in, "list file '", list_path, "' cannot be opened");
    std::vector<int> line_of;  // for the label range check after reading
    std::string line;
    int64_t max_label = -1;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      const std::string text = trim(line);
      if (text.empty() || text[0] == '#') continue;
      const size_t split = text.find_last_of(" \t");
      TETHER_CHECK(split != std::string::npos, list_path, ":", line_no, ": expected 'path label', got '", text, "'");
      const std::string rel = trim(text.substr(0, split)), label_text = text.substr(split + 1);
      int64_t label = 0;
      size_t used = 0;
      try {
        label = std::stoll(label_text, &used);
      } catch (const std::exception&) {
        used = 0;
      }
      TETHER_CHECK(used == label_text.size() && used > 0, list_path, ":", line_no, ": label '", label_text,
                   "' is not an integer (expected 'path label')");
      TETHER_CHECK(label >= 0, list_path, ":", line_no, ": negative label ", label);
      const std::string path = (fs::path(image_root) / rel).string();
      std::error_code ec;
      TETHER_CHECK(fs::is_regular_file(path, ec), list_path, ":", line_no, ": image '", path, "' not found");
      paths_.push_back(path);
      labels_.push_back(label);
      line_of.push_back(line_no);
      max_label = std::max(max_label, label);
    }
    TETHER_CHECK(!paths_.empty(), "list file '", list_path, "' lists no images");
    num_classes_ = num_classes > 0 ? num_classes : max_label + 1;
    for (size_t i = 0; i < labels_.size(); ++i)
      TETHER_CHECK(labels_[i] < num_classes_, list_path, ":", line_of[i], ": label ", labels_[i],
                   " out of range [0, ", num_classes_, ")");
  }

  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  int64_t label(int64_t i) const override { return labels_.at(i); }
  Image load(int64_t i) const override { return decode_image_file(paths_.at(i)); }
  std::string describe(int64_t i) const override { return paths_.at(i); }
  int64_t num_classes() const override { return num_classes_; }

 private:
  std::vector<std::string> paths_;
  std::vector<int64_t> labels_;
  int64_t num_classes_ = 0;
};

}  // namespace

std::shared_ptr<const Dataset> list_file(const std::string& list_path, const std::string& image_root,
                                         int64_t num_classes) {
  return std::make_shared<ListFileDataset>(list_path, image_root, num_classes);
}

}  // namespace tether::data
