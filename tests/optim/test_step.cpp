// The step pipeline (optim/step.h): direction hooks, the update, projection hooks under no-grad,
// in that order; an exception in a hook names the hook.
#include <stdexcept>

#include "autograd/grad_mode.h"
#include "optim/step.h"
#include "tests/test_util.h"

using namespace tether;

namespace {

struct Fixture {
  Tensor p = Tensor::from_vector<double>({1.0, 2.0}, {2}).set_requires_grad();
  std::unique_ptr<optim::Optimizer> opt = optim::make_sgd({{.name = "all", .names = {"p"}, .params = {p}}}, {.lr = 0.5});
  std::vector<std::string> log;
  void record(const std::string& what) {
    log.push_back(what + " p=" + std::to_string(p.to_vector<double>()[0]) + (GradMode::enabled() ? " grad-on" : " grad-off"));
  }
};

}  // namespace

TEST_SUITE("optim") {
  TEST_CASE("StepPipeline: direction hooks, optimizer step, projection hooks under no-grad, in order") {
    Fixture f;
    f.p.set_grad(Tensor::from_vector<double>({1.0, 1.0}, {2}));
    optim::StepPipeline pipeline;
    pipeline.direction.push_back({"first", [&] { f.record("first"); }});
    pipeline.direction.push_back({"double", [&] {  // rewrites the gradient the optimizer will use
      f.record("double");
      f.p.set_grad(Tensor::from_vector<double>({2.0, 2.0}, {2}));
    }});
    pipeline.projection.push_back({"clamp", [&] {
      f.record("clamp");
      f.p.copy_(Tensor::from_vector<double>({-0.5, 0.5}, {2}));
    }});
    pipeline.projection.push_back({"last", [&] { f.record("last"); }});
    REQUIRE(GradMode::enabled());
    pipeline.step(*f.opt);
    // p = 1 - 0.5 * 2 = 0 after the update; the second projection sees the first one's result.
    CHECK(f.log == std::vector<std::string>{"first p=1.000000 grad-on", "double p=1.000000 grad-on",
                                            "clamp p=0.000000 grad-off", "last p=-0.500000 grad-off"});
    CHECK(f.p.to_vector<double>() == std::vector<double>{-0.5, 0.5});
    CHECK(f.opt->steps() == 1);
    CHECK(GradMode::enabled());
  }

  TEST_CASE("StepPipeline: an exception in a hook is rethrown naming the hook") {
    Fixture f;
    f.p.set_grad(Tensor::from_vector<double>({1.0, 1.0}, {2}));
    optim::StepPipeline pipeline;
    pipeline.direction.push_back({"dtnh", [] { throw std::runtime_error("gradients are NaN"); }});
    CHECK_THROWS_WITH_AS(pipeline.step(*f.opt), "direction hook 'dtnh': gradients are NaN", Error);
    CHECK(f.opt->steps() == 0);  // the update did not run
    CHECK(f.p.to_vector<double>() == std::vector<double>{1.0, 2.0});

    optim::StepPipeline project;
    project.projection.push_back({"mars-pgm", [] { TETHER_FAIL("row norm is infinite"); }});
    CHECK_THROWS_WITH_AS(project.step(*f.opt), doctest::Contains("projection hook 'mars-pgm': error at"), Error);
    CHECK_THROWS_WITH_AS(project.step(*f.opt), doctest::Contains("row norm is infinite"), Error);
    CHECK(GradMode::enabled());  // the no-grad guard is undone on the way out

    optim::StepPipeline empty_hook;
    empty_hook.direction.push_back({"nothing", nullptr});
    CHECK_THROWS_WITH_AS(empty_hook.step(*f.opt), doctest::Contains("direction hook 'nothing' has no function"), Error);
  }
}
