"""The training and scoring path pays for the output layer only where it is needed, and computes the same numbers
as the model's full forward pass: the answer-only loss and its LoRA gradients, label scoring at the last position,
and the Trainer's holdout evaluation against predict's own label scoring."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("peft")

from tasks import LABELS, TASKS  # noqa: E402

# LoRA on the tied output layer is the point of one test here (peft warns about merging it later), and peft reads
# an attribute transformers 5 renamed: neither asks anything of these tests.
pytestmark = [pytest.mark.filterwarnings("ignore:Model has `tie_word_embeddings=True`:UserWarning"),
              pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")]

EXAMPLES = [
    {"instruction": TASKS["CoLA"].instruction, "input": "Anna reads a long book in the garden.", "output": "1"},
    {"instruction": TASKS["CoLA"].instruction, "input": "Book the reads.", "output": "0"},
    {"instruction": TASKS["QQP"].instruction, "input": "Question 1: How do I cook rice?\nQuestion 2: How to cook rice?",
     "output": "1"},
]


def with_lora(model, targets=("q_proj", "v_proj", "down_proj")):
    """A peft LoRA model whose B matrices are not zero, so LoRA changes the outputs and every gradient counts."""
    from peft import LoraConfig, get_peft_model
    torch.manual_seed(0)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=list(targets)))
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.05)
    return model


def batch_of(tokenizer, label_prompt=False):
    import modeling
    from transformers import DataCollatorForSeq2Seq
    label_ids = modeling.label_token_ids(tokenizer)
    rows = [modeling.encode_example(tokenizer, e, 256, label_prompt, label_ids) for e in EXAMPLES]
    for row in rows:
        row.pop("truncated")
    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100)(rows)


def loss_and_grads(model, compute):
    model.zero_grad()
    loss = compute()
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    assert grads and all(g.abs().sum() > 0 for g in grads.values())
    return loss.detach(), grads


def assert_same_loss_and_grads(model, batch):
    import training
    full_loss, full_grads = loss_and_grads(model, lambda: model(**batch).loss)
    answer_loss, answer_grads = loss_and_grads(
        model, lambda: training.answer_only_loss(model, batch["input_ids"], batch["attention_mask"], batch["labels"])[0])
    assert torch.allclose(answer_loss, full_loss, rtol=1e-5, atol=1e-6), (answer_loss, full_loss)
    for name, grad in full_grads.items():
        assert torch.allclose(answer_grads[name], grad, rtol=1e-4, atol=1e-7), name


def test_answer_only_loss_and_lora_gradients_match_the_full_forward(tiny_gemma):
    import modeling
    from transformers import AutoModelForCausalLM
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    model = with_lora(AutoModelForCausalLM.from_pretrained(str(tiny_gemma), local_files_only=True))
    batch = batch_of(tokenizer)
    assert (batch["attention_mask"] == 0).any(), "rows of different lengths, so padding is part of the check"
    assert_same_loss_and_grads(model, batch)


def test_answer_only_loss_honours_final_logit_softcapping_and_lora_on_the_output_layer(tiny_gemma):
    """Gemma 2 caps its logits (30 in gemma-2-2b) and a learner may put LoRA on lm_head: both are the model's own
    output path, which answer_only_loss goes through."""
    import modeling
    transformers = pytest.importorskip("transformers")
    if not hasattr(transformers, "Gemma2Config"):
        pytest.skip(f"transformers {transformers.__version__} has no Gemma 2")
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    config = transformers.Gemma2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                                       num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                                       final_logit_softcapping=0.5, pad_token_id=0, eos_token_id=1, bos_token_id=2)
    torch.manual_seed(0)
    base = transformers.Gemma2ForCausalLM(config)
    batch = batch_of(tokenizer)
    with torch.no_grad():
        with modeling.output_layer_only_at(base, batch["attention_mask"].bool()):
            capped = base(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits[0]
    assert capped.abs().max() <= 0.5 and capped.abs().max() > 0.1   # the cap was applied, and it bites
    assert_same_loss_and_grads(with_lora(base, targets=("q_proj", "lm_head")), batch)


def test_prompt_weighted_loss_is_the_full_forward_loss_at_weight_1_and_weighs_the_prompt_below(tiny_gemma):
    import modeling
    import training
    from transformers import AutoModelForCausalLM
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    model = with_lora(AutoModelForCausalLM.from_pretrained(str(tiny_gemma), local_files_only=True))
    batch = batch_of(tokenizer, label_prompt=True)
    ids, mask, labels = batch["input_ids"], batch["attention_mask"], batch["labels"]
    with torch.no_grad():
        full = model(**batch).loss
        assert torch.allclose(training.prompt_weighted_loss(model, ids, mask, labels, 1.0), full, rtol=1e-5)
        answer = training.answer_only_loss(model, ids, mask, batch_of(tokenizer)["labels"])[0]
        weighted = training.prompt_weighted_loss(model, ids, mask, labels, 0.1)
        tiny = training.prompt_weighted_loss(model, ids, mask, labels, 1e-9)
    n_answer, n_prompt = 2 * len(EXAMPLES), int((labels[:, 1:] != -100).sum()) - 2 * len(EXAMPLES)
    prompt_mean = (full * (n_answer + n_prompt) - answer * n_answer) / n_prompt
    assert torch.allclose(weighted, (answer * n_answer + 0.1 * prompt_mean * n_prompt) / (n_answer + 0.1 * n_prompt),
                          rtol=1e-4)
    assert torch.allclose(tiny, answer, rtol=1e-4) and not torch.allclose(full, answer, rtol=1e-2)


def test_a_negative_prompt_loss_weight_is_refused_before_the_model_loads(tmp_path):
    from runtime import UserError, load_settings
    with pytest.raises(UserError, match="PROMPT_LOSS_WEIGHT=-0.5 cannot work: use from 0"):
        load_settings(["--prompt_loss_weight", "-0.5", "--model_path", str(tmp_path / "no-model")])


def test_label_scoring_is_the_full_forward_at_the_last_position(tiny_gemma):
    import modeling
    from transformers import AutoModelForCausalLM
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    model = with_lora(AutoModelForCausalLM.from_pretrained(str(tiny_gemma), local_files_only=True),
                      targets=("q_proj", "lm_head")).eval()
    label_ids = modeling.label_token_ids(tokenizer)
    prompts = [modeling.encode_prompt(tokenizer, e["instruction"], e["input"], 254)[0] for e in EXAMPLES]
    expected = []
    with torch.no_grad():
        for prompt in prompts:
            logits = model(input_ids=torch.tensor([prompt])).logits[0, -1]
            expected.append(LABELS[int(logits[label_ids].argmax())])
            gap = abs(float(logits[label_ids[0]] - logits[label_ids[1]]))
            assert gap > 1e-4, "a near tie would make the comparison meaningless"
    for batch_size in (1, 3):   # batched rows are right-padded: the same answers
        assert modeling.score_labels(model, prompts, label_ids, tokenizer.pad_token_id, batch_size) == expected


def test_free_decoding_hands_the_output_layer_a_fresh_row_and_writes_what_generate_writes(tiny_gemma):
    """generate() gives the output layer a view of the last position, strided over the whole prompt; torch's matmul
    then copies the whole transposed output layer for a frozen weight (a 3 s decoding step with Gemma 3 270M)."""
    import modeling
    from transformers import AutoModelForCausalLM
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    model = with_lora(AutoModelForCausalLM.from_pretrained(str(tiny_gemma), local_files_only=True)).eval()
    output_layer = modeling.causal_lm_parts(model)[1]
    prompts = [modeling.encode_prompt(tokenizer, e["instruction"], e["input"], 254)[0] for e in EXAMPLES]
    expected = []
    with torch.no_grad():   # plain generate, no hook: the texts free decoding must reproduce
        for prompt in prompts:
            ids = torch.tensor([prompt])
            output = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=3,
                                    do_sample=False, pad_token_id=tokenizer.pad_token_id,
                                    eos_token_id=tokenizer.eos_token_id)
            expected.append(tokenizer.decode(output[0, len(prompt):], skip_special_tokens=True))
    seen = []
    recorder = output_layer.register_forward_hook(lambda module, args, output: seen.append(args[0]))
    _, texts, _ = modeling.answer_examples(model, tokenizer, EXAMPLES, 256, decode="generate", max_new_tokens=3)
    direct = [modeling.generate_answer(model, tokenizer, prompt, 3) for prompt in prompts]   # tools/bench.py's way
    recorder.remove()
    assert texts == direct == expected
    assert len(seen) >= 2 * len(prompts)
    assert all(x.stride() == torch.empty(x.shape).stride() for x in seen)
    assert not output_layer._forward_pre_hooks and not output_layer._forward_hooks   # nothing left behind


def test_label_ids_are_the_tokens_that_follow_the_prompt(tiny_gemma):
    import modeling
    tokenizer = modeling.load_tokenizer(tiny_gemma)
    assert modeling.label_token_ids(tokenizer) == [tokenizer(label, add_special_tokens=False)["input_ids"][0]
                                                   for label in LABELS]


class MergingTokenizer:
    """A tokenizer that writes "\\n1" as one token: the label does not follow the prompt as a token of its own."""

    def __call__(self, text, add_special_tokens=True):
        return {"input_ids": [ord(c) for c in text.replace("\n1", "\x00")]}   # one token a character, but "\n1"


def test_a_label_that_is_not_one_token_after_the_prompt_is_refused_with_a_clear_message():
    import modeling
    from runtime import UserError
    with pytest.raises(UserError, match="does not write the answer '1' as one token after the prompt"):
        modeling.label_token_ids(MergingTokenizer())


def test_a_checkpoint_that_answers_one_label_everywhere_is_kept_last():
    """On CoLA's 70 % of 1s, answering 1 everywhere (0.70) must not beat a checkpoint that reads the rows (0.65)."""
    import numpy as np
    from types import SimpleNamespace

    import training
    gold = np.array([1] * 14 + [0] * 6)
    always_1 = np.tile([0.0, 1.0], (20, 1))
    reading = np.array([[0.0, 1.0]] * 10 + [[1.0, 0.0]] * 4 + [[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)
    collapsed = training.holdout_metrics(SimpleNamespace(predictions=(always_1, gold)), min_gain=0.01)
    learned = training.holdout_metrics(SimpleNamespace(predictions=(reading, gold)), min_gain=0.01)
    assert collapsed["accuracy"] == 0.70 and learned["accuracy"] == 0.65 and learned["mcc"] > 0
    assert learned["choice"] > collapsed["choice"]
    assert learned["choice"] == learned["accuracy"]          # otherwise the choice is the accuracy


def test_holdout_evaluation_by_the_trainer_equals_predicts_label_scoring(tmp_path, tiny_gemma, synthetic_data):
    """A few training steps, then the Trainer's own evaluation loop and predict's modeling.answer_examples give the same
    accuracy on the same holdout: the best checkpoint is chosen by the number predict will reproduce."""
    import modeling
    import runtime
    settings, holdout, record = train_on_synthetic_cola(tmp_path, tiny_gemma, synthetic_data, 48, [
        "--max_steps", "3", "--learning_rate", "1e-2", "--evals_per_epoch", "1"])
    model, tokenizer = modeling.load_base_model(settings)
    model = modeling.load_adapter(model, runtime.load_settings(["--saved_model_dir", str(tmp_path / "adapter")]), "CoLA")
    predicted, _, _ = modeling.answer_examples(model, tokenizer, holdout, settings.MAX_LENGTH, batch_size=5)
    accuracy = sum(p == e["output"] for p, e in zip(predicted, holdout)) / len(holdout)
    assert record["holdout_accuracy"] == pytest.approx(accuracy)
    assert record["steps"] == 3 and "eval_loss" in record["log_history"][-1]


def test_the_collapse_guard_judges_the_checkpoint_the_trainer_would_keep():
    """The lab's CoLA cell at 256 examples (seed 42): one early check scored MCC 0.101 with its threshold while
    answering 0 everywhere, every later one answered 1 everywhere. The Trainer keeps the first all-1 check (MCC 0),
    so at half the steps the run has collapsed, whatever that early check said."""
    from types import SimpleNamespace as NS

    import training

    checks = [(13, -0.705, 0.101), (26, -0.295, 0.0), (39, -0.295, 0.0), (52, -0.295, 0.0)]
    guard, control, history = training.CollapseGuard(0.1), NS(should_training_stop=False), []
    stopped_at = None
    for step, choice, tuned_mcc in checks:
        history.append({"eval_choice": choice, "eval_tuned_mcc": tuned_mcc, "step": step})   # the Trainer logs first
        guard.on_evaluate(None, NS(global_step=step, max_steps=100, is_world_process_zero=False, log_history=history),
                          control)
        if control.should_training_stop and stopped_at is None:
            stopped_at = step
    assert stopped_at == 52

    learning = [(13, -0.705, 0.0), (26, 0.74, 0.31), (39, 0.72, 0.05), (52, 0.73, 0.04)]   # the kept check learned
    guard, control, history = training.CollapseGuard(0.1), NS(should_training_stop=False), []
    for step, choice, tuned_mcc in learning:
        history.append({"eval_choice": choice, "eval_tuned_mcc": tuned_mcc, "step": step})
        guard.on_evaluate(None, NS(global_step=step, max_steps=100, is_world_process_zero=False, log_history=history),
                          control)
    assert not control.should_training_stop


def test_of_two_checks_with_the_same_holdout_accuracy_the_later_is_kept():
    """Real CoLA, seed 43: three checks tied at 0.8025 and the Trainer kept the first; the last scored 2 points more
    on the dev rows. A tie now goes to the later check, and the tie-break never outweighs one holdout row."""
    import numpy as np
    from types import SimpleNamespace

    import training
    gold = np.array([1] * 14 + [0] * 6)
    reading = np.array([[0.0, 1.0]] * 10 + [[1.0, 0.0]] * 4 + [[1.0, 0.0]] * 3 + [[0.0, 1.0]] * 3)   # 13 of 20 right
    one_more = reading.copy()
    one_more[10] = [0.0, 1.0]                                                                         # 14 of 20 right
    prediction = SimpleNamespace(predictions=(reading, gold))
    early = training.holdout_metrics(prediction, min_gain=0.01, progress=0.5)
    late = training.holdout_metrics(prediction, min_gain=0.01, progress=1.0)
    better_early = training.holdout_metrics(SimpleNamespace(predictions=(one_more, gold)), min_gain=0.01, progress=0.1)
    assert early["accuracy"] == late["accuracy"] and late["choice"] > early["choice"]
    assert better_early["choice"] > late["choice"]
    assert late["choice"] == pytest.approx(late["accuracy"], abs=1e-6)


def kept_by_the_trainer(accuracies: list, keep_latest_within: float, rows: int = 400, collapsed=()) -> int:
    """Which check (0, 1, ...) the Trainer keeps when each check's `choice` comes from training.checkpoint_choice,
    replayed as tools/keep_rule.py replays it: a new check is kept only when its choice is larger than the kept one's."""
    from tools.keep_rule import kept_step
    checks = [(index + 1, accuracy, index in collapsed) for index, accuracy in enumerate(accuracies)]
    return kept_step(checks, keep_latest_within, rows) - 1


def test_keep_latest_within_keeps_the_latest_check_near_the_best():
    """Real QQP, seed 43 of the combination (docs/real_model.md): its twelve checks, the first answering one label
    everywhere. It kept step 315 (holdout 0.795) over step 750 (0.78), which answered 30 more of 1000 dev rows. One
    standard error of a 400-row holdout at 0.795 is 0.0202."""
    qqp_seed_43 = [0.6275, 0.7525, 0.715, 0.755, 0.795, 0.765, 0.7925, 0.78, 0.7875, 0.78, 0.78, 0.78]
    assert kept_by_the_trainer(qqp_seed_43, 0.0, collapsed={0}) == 4          # the best check, step 315
    assert kept_by_the_trainer(qqp_seed_43, 1.0, collapsed={0}) == 11         # the last: 0.015 behind, inside the noise
    assert kept_by_the_trainer(qqp_seed_43, 0.5, collapsed={0}) == 8          # reach 0.0101: 0.7875 is the latest within
    climbed_and_fell = [0.70, 0.83, 0.80]                                  # 0.03 behind: beyond one standard error
    assert kept_by_the_trainer(climbed_and_fell, 1.0) == 1
    assert kept_by_the_trainer([0.80, 0.82, 0.81, 0.82], 0.0) == 3        # 0 is the rule as before: ties to the later
    # A check that answers one label everywhere is never kept, nor counted as the best to be near.
    assert kept_by_the_trainer([0.60, 0.705, 0.59], 1.0, collapsed={1}) == 2
    assert kept_by_the_trainer([0.705, 0.70], 1.0, collapsed={0}) == 1


def test_keep_latest_within_is_the_same_one_check_at_a_time_as_over_the_whole_run():
    """The Trainer sees one check at a time; the rule is about the whole run (the latest check within reach of the
    run's best). Both give the same checkpoint, whatever the accuracies."""
    import math
    import random
    rng = random.Random(0)
    for trial in range(2000):
        rows = rng.choice([20, 100, 400])
        accuracies = [rng.randint(0, rows) / rows for _ in range(rng.randint(1, 9))]
        within = rng.choice([0.5, 1.0, 2.0])
        best = max(accuracies)
        reach = within * math.sqrt(best * (1 - best) / rows)
        latest_near_the_best = max(i for i, a in enumerate(accuracies) if a >= best - reach - 1e-12)
        assert kept_by_the_trainer(accuracies, within, rows) == latest_near_the_best, (accuracies, within, rows)


def test_the_trainer_keeps_the_last_of_checks_that_tie(tmp_path, tiny_gemma, synthetic_data):
    """At a learning rate too small to move any answer every check scores the same: the adapter kept is the last."""
    _, _, record = train_on_synthetic_cola(tmp_path, tiny_gemma, synthetic_data, 24, [
        "--max_steps", "4", "--learning_rate", "1e-12", "--restarts", "0"], eval_every=2)
    checks = [entry["eval_accuracy"] for entry in record["log_history"] if "eval_choice" in entry]
    assert len(checks) >= 2 and len(set(checks)) == 1
    assert record["best_checkpoint"].endswith("checkpoint-4")


def test_the_trainers_holdout_check_measures_against_the_runs_earlier_checks_that_read_the_rows():
    """HoldoutTrainer.score_holdout takes `earlier` from the run's log (a resumed run's too), leaving out checks that
    answered one label everywhere: 0.79 is within one standard error (0.02) of the earlier 0.80 and so the one to
    keep, though an earlier collapsed check scored 0.90."""
    import numpy as np
    from types import SimpleNamespace

    import training
    gold = np.array([1] * 200 + [0] * 200)
    scores = np.array([[0.0, 1.0]] * 200 + [[1.0, 0.0]] * 200)
    scores[:84] = [1.0, 0.0]                                     # 84 of 400 wrong: 0.79
    log = [{"eval_accuracy": 0.90, "eval_choice": -0.1, "eval_collapsed": 1.0, "step": 2}, {"loss": 0.4, "step": 3},
           {"eval_accuracy": 0.80, "eval_choice": 1.5, "eval_collapsed": 0.0, "step": 4}]
    trainer = SimpleNamespace(state=SimpleNamespace(global_step=6, max_steps=6, log_history=log),
                              threshold_min_gain=1.0, keep_latest_within=1.0)
    now = training.HoldoutTrainer.score_holdout(trainer, SimpleNamespace(predictions=(scores, gold)))
    assert now["accuracy"] == 0.79 and now["collapsed"] == 0.0
    assert now["choice"] == 2.0                                  # 1 + progress: above the 0.80 check's 1.5
    trainer.keep_latest_within = 0.0
    now = training.HoldoutTrainer.score_holdout(trainer, SimpleNamespace(predictions=(scores, gold)))
    assert now["choice"] == pytest.approx(0.79)                  # the best check's rule: below 0.80's


def train_on_synthetic_cola(tmp_path, tiny_gemma, synthetic_data, holdout_size: int, overrides: list, **train_kwargs):
    """data_process on 64 synthetic CoLA rows (holdout_size of them held out), then train.train_adapter on the tiny
    Gemma in batches of 8 with overrides: (settings, holdout examples, run record)."""
    import json

    import runtime
    import train
    from conftest import run_script
    out = tmp_path / "pre_data"
    run_script("data_process.py", "--data_dir", str(synthetic_data / "data"), "--pre_data_dir", str(out),
               "--data_set", "CoLA", "--max_samples", "64", "--holdout_size", str(holdout_size))
    settings = runtime.load_settings(["--model_path", str(tiny_gemma), "--batch_size", "8", "--grad_accum", "1",
                                      *overrides])
    examples = json.loads((out / "CoLA" / "CoLA_train.json").read_text())
    holdout = json.loads((out / "CoLA" / "CoLA_val.json").read_text())
    record = train.train_adapter(settings, examples, holdout, tmp_path / "adapter" / "CoLA", tmp_path / "checkpoints",
                                 data_sha256={}, **train_kwargs)
    return settings, holdout, record


def test_lora_plus_gives_the_b_matrices_their_own_learning_rate(tmp_path, tiny_gemma):
    """LORA_PLUS_RATIO puts every lora_B in a group at ratio x LEARNING_RATE and the rest at LEARNING_RATE; at 1 the
    Trainer's own optimizer is untouched (one learning rate)."""
    import modeling
    import runtime
    import training
    model, _ = modeling.load_base_model(runtime.load_settings(["--model_path", str(tiny_gemma)]))
    model = with_lora(model)
    b_ids = {id(p) for name, p in model.named_parameters() if "lora_B" in name}
    for ratio in (16.0, 1.0):
        args = training.training_arguments(output_dir=str(tmp_path / "out"), learning_rate=1e-3, report_to=[])
        trainer = training.HoldoutTrainer(model=model, args=args, label_ids=[0, 1], prompt_loss_weight=0.0,
                                          threshold_min_gain=0.02, lora_plus_ratio=ratio)
        groups = trainer.create_optimizer().param_groups
        trained = [p for g in groups for p in g["params"]]
        assert len(trained) == sum(p.requires_grad for p in model.parameters())
        rates = {id(p): g["lr"] for g in groups for p in g["params"]}
        expected = {True: 1e-3 * ratio, False: 1e-3}
        assert all(rate == pytest.approx(expected[key in b_ids]) for key, rate in rates.items())


def test_rslora_and_lora_plus_train_and_predict_reads_the_same_scale(tmp_path, tiny_gemma, synthetic_data):
    """With USE_RSLORA the update is scaled by alpha / sqrt(r): the adapter says so, and predict, loading it, scores
    the holdout as train.py recorded it (a scale lost on the way would change the answers)."""
    import json

    import modeling
    import runtime
    settings, holdout, record = train_on_synthetic_cola(tmp_path, tiny_gemma, synthetic_data, 48, [
        "--max_steps", "3", "--learning_rate", "1e-2", "--evals_per_epoch", "1", "--restarts", "0",
        "--use_rslora", "true", "--lora_plus_ratio", "4"])
    config = json.loads((tmp_path / "adapter" / "CoLA" / "adapter_config.json").read_text())
    assert config["use_rslora"] is True
    assert record["settings"]["LORA_PLUS_RATIO"] == 4 and record["settings"]["USE_RSLORA"] is True
    model, tokenizer = modeling.load_base_model(settings)
    model = modeling.load_adapter(model, runtime.load_settings(["--saved_model_dir", str(tmp_path / "adapter")]), "CoLA")
    scaling = {layer.scaling["default"] for layer in model.modules() if isinstance(getattr(layer, "scaling", None), dict)}
    assert len(scaling) == 1 and scaling.pop() == pytest.approx(settings.LORA_ALPHA / settings.LORA_R ** 0.5)
    predicted, _, _ = modeling.answer_examples(model, tokenizer, holdout, settings.MAX_LENGTH, batch_size=1)
    assert record["holdout_accuracy"] == pytest.approx(sum(p == e["output"] for p, e in zip(predicted, holdout))
                                                       / len(holdout))
