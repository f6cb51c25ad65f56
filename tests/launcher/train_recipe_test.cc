// A model's `train { ... }` block: every field is the default of the train flag of the same name,
// a flag given on the command line wins, and a bad value is refused naming the model and field.
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "core/error.h"
#include "launcher/train_flags.h"
#include "testing/error_of.h"

namespace convoy {
namespace {

TEST(TrainRecipe, EveryFieldIsATrainFlag) {
  const google::protobuf::Descriptor& d = *pb::TrainSpec::descriptor();
  for (int i = 0; i < d.field_count(); ++i) {
    std::string flag = "--" + d.field(i)->name();
    std::replace(flag.begin(), flag.end(), '_', '-');
    const std::vector<TrainFlag>& table = train_flags();
    EXPECT_TRUE(
        std::any_of(table.begin(), table.end(), [&](const TrainFlag& f) { return flag == f.name; }))
        << d.field(i)->name() << " has no flag " << flag;
  }
}

TEST(TrainRecipe, TheBlockFillsWhatTheCommandLineLeaves) {
  pb::TrainSpec recipe;
  recipe.set_epochs(12);
  recipe.set_lr(0.2);
  recipe.set_lr_schedule("step");
  recipe.set_nesterov(true);
  recipe.set_label_smoothing(0.1);
  recipe.set_test_flip(true);
  recipe.set_precision("fp32");
  recipe.set_global_batch_size(256);
  const TrainCommand given = parse_train_args({"--model", "m", "--lr", "0.01", "--epochs", "3"});
  EXPECT_EQ(given.given.size(), 3u);  // --model, --lr, --epochs
  const TrainCommand cmd = with_model_defaults(given, recipe, "m");
  EXPECT_EQ(cmd.lr, 0.01);  // given
  EXPECT_EQ(cmd.epochs, 3);
  EXPECT_EQ(cmd.lr_schedule, "step");  // from the block
  EXPECT_TRUE(cmd.nesterov);
  EXPECT_DOUBLE_EQ(cmd.label_smoothing, 0.1);
  EXPECT_TRUE(cmd.test_flip);
  EXPECT_EQ(cmd.global_batch_size, 256);
  const TrainCommand defaults;
  EXPECT_EQ(cmd.momentum, defaults.momentum);  // neither: the flag's default
}

// Either batch flag on the command line sets the batch: the recipe's other one does not apply.
TEST(TrainRecipe, ABatchFlagGivenOverridesEitherBatchField) {
  pb::TrainSpec recipe;
  recipe.set_global_batch_size(128);
  const TrainCommand cmd =
      with_model_defaults(parse_train_args({"--model", "m", "--batch-size", "32"}), recipe, "m");
  EXPECT_EQ(cmd.batch_size, 32);
  EXPECT_EQ(cmd.global_batch_size, 0);
  recipe.Clear();
  recipe.set_batch_size(16);
  const TrainCommand global = with_model_defaults(
      parse_train_args({"--model", "m", "--global-batch-size", "64"}), recipe, "m");
  EXPECT_EQ(global.global_batch_size, 64);
  EXPECT_EQ(global.batch_size, TrainCommand{}.batch_size);
}

TEST(TrainRecipe, BadValuesNameTheModelAndField) {
  const TrainCommand given = parse_train_args({"--model", "m.pbtxt"});
  pb::TrainSpec recipe;
  recipe.set_lr_schedule("banana");
  EXPECT_EQ(testing::error_of([&] { with_model_defaults(given, recipe, "m.pbtxt"); }),
            "m.pbtxt: train.lr_schedule: --lr-schedule: banana not in {constant,step,cosine}");
  recipe.Clear();
  recipe.set_label_smoothing(1.5);
  EXPECT_TRUE(testing::error_of([&] {
                with_model_defaults(given, recipe, "m.pbtxt");
              }).starts_with("m.pbtxt: train.label_smoothing: --label-smoothing: "));
  recipe.Clear();
  recipe.set_ema_decay(1.0);
  EXPECT_TRUE(testing::error_of([&] {
                with_model_defaults(given, recipe, "m.pbtxt");
              }).starts_with("m.pbtxt: train.ema_decay: --ema-decay: "));
  recipe.Clear();
  recipe.set_epochs(0);
  EXPECT_TRUE(testing::error_of([&] {
                with_model_defaults(given, recipe, "m.pbtxt");
              }).starts_with("m.pbtxt: train.epochs: --epochs: "));
}

}  // namespace
}  // namespace convoy
