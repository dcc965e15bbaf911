// The protocol samplers. Seeding: each function draws from one Generator(seed), visiting the
// classes in label order and shuffling each class's indices (in dataset order) with
// Fisher–Yates (i from n-1 down to 1: swap a[i] with a[next_below(i + 1)]) and taking the
// front of the shuffled class. Results are sorted back into dataset order, so they depend only
// on the arguments.
#include <algorithm>
#include <cmath>

#include "core/random.h"
#include "data/dataset.h"

namespace tether::data {
namespace {

void shuffle(std::vector<int64_t>& a, Generator& gen) {
  for (size_t i = a.size(); i > 1; --i) std::swap(a[i - 1], a[gen.next_below(i)]);
}

std::string class_name(const Dataset& ds, int64_t c) {
  const std::vector<std::string> names = ds.class_names();
  return c < static_cast<int64_t>(names.size()) ? "'" + names[c] + "'" : std::to_string(c);
}

std::vector<int64_t> sorted(std::vector<int64_t> v) {
  std::sort(v.begin(), v.end());
  return v;
}

}  // namespace

std::vector<std::vector<int64_t>> indices_by_class(const Dataset& ds) {
  const int64_t k = ds.num_classes();
  std::vector<std::vector<int64_t>> groups(static_cast<size_t>(k));
  for (int64_t i = 0; i < ds.size(); ++i) {
    const int64_t l = ds.label(i);
    TETHER_CHECK(l >= 0 && l < k, "sample '", ds.describe(i), "' has label ", l, " outside [0, ", k, ")");
    groups[l].push_back(i);
  }
  return groups;
}

std::vector<int64_t> few_shot(const Dataset& ds, int64_t per_class, uint64_t seed, bool allow_fewer) {
  TETHER_CHECK(per_class > 0, "few_shot: per_class must be positive, got ", per_class);
  Generator gen(seed);
  std::vector<int64_t> chosen;
  auto groups = indices_by_class(ds);
  for (size_t c = 0; c < groups.size(); ++c) {
    std::vector<int64_t>& g = groups[c];
    const int64_t n = static_cast<int64_t>(g.size());
    TETHER_CHECK(n >= per_class || allow_fewer, "few_shot: class ", class_name(ds, c), " has ", n,
                 " samples, fewer than ", per_class);
    shuffle(g, gen);
    chosen.insert(chosen.end(), g.begin(), g.begin() + std::min(n, per_class));
  }
  return sorted(std::move(chosen));
}

std::pair<std::vector<int64_t>, std::vector<int64_t>> train_test_per_class(const Dataset& ds, int64_t k_train,
                                                                           int64_t m_test, uint64_t seed) {
  TETHER_CHECK(k_train > 0 && m_test >= 0, "train_test_per_class: need k_train > 0 and m_test >= 0, got ",
               k_train, " and ", m_test);
  Generator gen(seed);
  std::vector<int64_t> train, test;
  auto groups = indices_by_class(ds);
  for (size_t c = 0; c < groups.size(); ++c) {
    std::vector<int64_t>& g = groups[c];
    const int64_t n = static_cast<int64_t>(g.size());
    TETHER_CHECK(n >= k_train + m_test, "train_test_per_class: class ", class_name(ds, c), " has ", n,
                 " samples, fewer than ", k_train, " + ", m_test);
    shuffle(g, gen);
    train.insert(train.end(), g.begin(), g.begin() + k_train);
    test.insert(test.end(), g.begin() + k_train, m_test > 0 ? g.begin() + k_train + m_test : g.end());
  }
  return {sorted(std::move(train)), sorted(std::move(test))};
}

// Per class: round(fraction * n) samples to validation, at least one when fraction > 0 but
// never the class's last one (a class with a single sample stays in training).
std::pair<std::vector<int64_t>, std::vector<int64_t>> validation_split(const Dataset& ds, double fraction,
                                                                       uint64_t seed) {
  TETHER_CHECK(fraction >= 0 && fraction < 1, "validation_split: fraction must be in [0, 1), got ", fraction);
  Generator gen(seed);
  std::vector<int64_t> train, val;
  auto groups = indices_by_class(ds);
  for (std::vector<int64_t>& g : groups) {
    const int64_t n = static_cast<int64_t>(g.size());
    int64_t n_val = std::llround(fraction * static_cast<double>(n));
    if (fraction > 0) n_val = std::max<int64_t>(n_val, 1);
    n_val = std::min<int64_t>(n_val, std::max<int64_t>(n - 1, 0));
    shuffle(g, gen);
    val.insert(val.end(), g.begin(), g.begin() + n_val);
    train.insert(train.end(), g.begin() + n_val, g.end());
  }
  return {sorted(std::move(train)), sorted(std::move(val))};
}

}  // namespace tether::data
