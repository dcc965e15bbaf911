// ImageFolder: root/<class>/<file>, in SPEC 9's order. Class index = position of the folder
// name in byte-wise sorted order; files sorted byte-wise; dataset order is class-major.
// Like torchvision, a class folder is searched recursively (following symlinks), directories
// visited in byte-wise order of their path and each directory's files sorted — for the usual
// flat class folder that is simply the sorted file names.
#include <algorithm>
#include <cctype>
#include <filesystem>
#include <system_error>

#include "data/dataset.h"

namespace tether::data {
namespace {

namespace fs = std::filesystem;

bool is_image_file(const fs::path& p) {
  std::string ext = p.extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  for (const char* known : {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".ppm", ".pgm", ".pnm"})
    if (ext == known) return true;
  return false;
}

// The image files under a class folder: (directory, file name) pairs sorted byte-wise, which
// is torchvision's sorted(os.walk(...)) then sorted(file names).
std::vector<std::string> list_class_files(const fs::path& dir) {
  std::vector<std::pair<std::string, std::string>> files;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::follow_directory_symlink, ec), end;
       !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_regular_file(type_ec) && is_image_file(it->path()))
      files.emplace_back(it->path().parent_path().string(), it->path().filename().string());
  }
  TETHER_CHECK(!ec, "ImageFolder: cannot list '", dir.string(), "': ", ec.message());
  std::sort(files.begin(), files.end());  // std::string compares bytes (as unsigned char)
  std::vector<std::string> paths;
  for (auto& [parent, name] : files) paths.push_back((fs::path(parent) / name).string());
  return paths;
}

class ImageFolderDataset : public Dataset {
 public:
  explicit ImageFolderDataset(const std::string& dir) {
    std::error_code ec;
    TETHER_CHECK(fs::is_directory(dir, ec), "ImageFolder: '", dir, "' is not a directory (or does not exist)");
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_directory(type_ec)) classes_.push_back(it->path().filename().string());
    }
    TETHER_CHECK(!ec, "ImageFolder: cannot list '", dir, "': ", ec.message());
    TETHER_CHECK(!classes_.empty(), "ImageFolder: '", dir, "' has no class folders (expected ", dir,
                 "/<class>/<image files>)");
    std::sort(classes_.begin(), classes_.end());
    for (size_t c = 0; c < classes_.size(); ++c) {
      const fs::path class_dir = fs::path(dir) / classes_[c];
      std::vector<std::string> files = list_class_files(class_dir);
      TETHER_CHECK(!files.empty(), "ImageFolder: class folder '", class_dir.string(),
                   "' has no image files (jpg jpeg png bmp gif ppm pgm pnm)");
      for (std::string& f : files) {
        paths_.push_back(std::move(f));
        labels_.push_back(static_cast<int64_t>(c));
      }
    }
  }

  int64_t size() const override { return static_cast<int64_t>(paths_.size()); }
  int64_t label(int64_t i) const override { return labels_.at(i); }
  Image load(int64_t i) const override { return decode_image_file(paths_.at(i)); }
  std::string describe(int64_t i) const override { return paths_.at(i); }
  int64_t num_classes() const override { return static_cast<int64_t>(classes_.size()); }
  std::vector<std::string> class_names() const override { return classes_; }

 private:
  std::vector<std::string> classes_, paths_;
  std::vector<int64_t> labels_;
};

}  // namespace

std::shared_ptr<const Dataset> image_folder(const std::string& dir) { return std::make_shared<ImageFolderDataset>(dir); }

// "train" → root/train. "val" → root/val, falling back to root/test (and "test" → root/test,
// falling back to root/val): many datasets ship only one held-out split. Other names are
// taken literally.
std::shared_ptr<const Dataset> image_folder_split(const std::string& root, const std::string& split) {
  if (split != "val" && split != "test") return image_folder((fs::path(root) / split).string());
  const std::string other = split == "val" ? "test" : "val";
  const std::string first = (fs::path(root) / split).string(), second = (fs::path(root) / other).string();
  std::error_code ec;
  if (fs::is_directory(first, ec)) return image_folder(first);
  if (fs::is_directory(second, ec)) return image_folder(second);
  TETHER_FAIL("ImageFolder: no '", split, "' split: neither '", first, "' nor '", second, "' is a directory");
}

}  // namespace tether::data
