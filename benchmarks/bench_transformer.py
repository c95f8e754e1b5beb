"""Transformer training throughput: annfast vs PyTorch CPU, same process, same models.

Encoder classifier (the issue's benchmark): token ids (64) -> Embedding(1000, 128) + learned
positions -> 2 x TransformerEncoderLayer(d_model 128, 4 heads, feed-forward 512, dropout 0.1,
relu, post-norm) -> mean over the tokens -> Dense(10) softmax; sparse categorical
cross-entropy, Adam(1e-3), float32. PyTorch runs torch.nn.TransformerEncoder(batch_first=True)
with the same sizes (training mode, so its fast inference path is not used).

Seq2seq transformer (the reversal task's model): source and shifted target of 10 tokens,
vocabularies 10 and 11, d_model 64, 4 heads, feed-forward 128, 2 encoder + 2 decoder layers,
dropout 0.1, batch 64; PyTorch's torch.nn.Transformer with a causal target mask.

LSTM encoder-decoder with dot-product attention (annfast.seq2seq.lstm_attention; needs the
recurrent layers): the same data, embeddings of 32, LSTMs of 128 units, Luong attention, a
tanh combination layer; PyTorch: nn.LSTM x 2, bmm attention, the same layers.

Each framework gets the same thread count; epochs are interleaved (annfast, torch, annfast, ...)
with PAUSE seconds of idle before each, and each one's minimum over --repeats is kept. Timings on
a shared machine are noisy: compare the ratios, not the absolute numbers.

    python benchmarks/bench_transformer.py                      # 2 threads, every model
    python benchmarks/bench_transformer.py --models encoder --batches 16 1 --repeats 7
"""
import argparse
import os
import sys

import numpy as np

try:
    import annfast as af
except ImportError:  # run from a source checkout with an in-place build
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    import annfast as af

from bench_common import best_interleaved, core_round_trip, print_pool_stats  # noqa: E402

VOCAB, STEPS, D, HEADS, FF, CLASSES = 1000, 64, 128, 4, 512, 10


# ---- encoder classifier -------------------------------------------------------------------------
def af_encoder():
    ids = af.Input(shape=(STEPS,), dtype="int32")
    x = af.PositionalEmbedding(STEPS, D)(af.Embedding(VOCAB, D)(ids))
    for _ in range(2):
        x = af.TransformerEncoderLayer(D, HEADS, FF, dropout=0.1)(x)
    out = af.Dense(CLASSES, activation="softmax")(af.GlobalAveragePooling1D()(x))
    model = af.Model(ids, out, dtype="float32", seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    return model


def torch_encoder(torch):
    nn = torch.nn

    class Encoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(VOCAB, D)
            self.pos = nn.Parameter(torch.randn(STEPS, D) * 0.05)
            layer = nn.TransformerEncoderLayer(D, HEADS, FF, dropout=0.1, batch_first=True)
            self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
            self.fc = nn.Linear(D, CLASSES)

        def forward(self, ids):
            return self.fc(self.enc(self.emb(ids) + self.pos).mean(dim=1))

    return Encoder()


# ---- seq2seq transformer ------------------------------------------------------------------------
S_LEN, S_SRC, S_TGT, S_D, S_HEADS, S_FF = 10, 10, 11, 64, 4, 128


def af_seq2seq():
    model = af.seq2seq.transformer(S_SRC, S_TGT, S_LEN, S_LEN, d_model=S_D, num_heads=S_HEADS,
                                   dim_feedforward=S_FF, num_layers=2, dropout=0.1, seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    return model


def torch_seq2seq(torch):
    nn = torch.nn

    class Seq2Seq(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_emb, self.tgt_emb = nn.Embedding(S_SRC, S_D), nn.Embedding(S_TGT, S_D)
            self.src_pos = nn.Parameter(torch.randn(S_LEN, S_D) * 0.05)
            self.tgt_pos = nn.Parameter(torch.randn(S_LEN, S_D) * 0.05)
            self.tf = nn.Transformer(S_D, S_HEADS, 2, 2, S_FF, dropout=0.1, batch_first=True)
            self.out = nn.Linear(S_D, S_TGT)
            self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(S_LEN))

        def forward(self, src, tgt):
            h = self.tf(self.src_emb(src) + self.src_pos, self.tgt_emb(tgt) + self.tgt_pos,
                        tgt_mask=self.mask, tgt_is_causal=True)
            return self.out(h)

    return Seq2Seq()


# ---- LSTM encoder-decoder with attention ------------------------------------------------------------
L_EMB, L_UNITS = 32, 128


def af_lstm():
    model = af.seq2seq.lstm_attention(S_SRC, S_TGT, S_LEN, S_LEN, embed_dim=L_EMB, units=L_UNITS, seed=0)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=af.optimizers.Adam(1e-3))
    return model


def torch_lstm(torch):
    nn = torch.nn

    class LSTMAttention(nn.Module):
        def __init__(self):
            super().__init__()
            self.src_emb, self.tgt_emb = nn.Embedding(S_SRC, L_EMB), nn.Embedding(S_TGT, L_EMB)
            self.enc = nn.LSTM(L_EMB, L_UNITS, batch_first=True)
            self.dec = nn.LSTM(L_EMB, L_UNITS, batch_first=True)
            self.combine = nn.Linear(2 * L_UNITS, L_UNITS)
            self.out = nn.Linear(L_UNITS, S_TGT)

        def forward(self, src, tgt):
            enc, state = self.enc(self.src_emb(src))
            dec, _ = self.dec(self.tgt_emb(tgt), state)
            p = torch.softmax(dec @ enc.transpose(1, 2), dim=-1)
            return self.out(torch.tanh(self.combine(torch.cat([dec, p @ enc], dim=-1))))

    return LSTMAttention()


def torch_epoch(torch, model, xs, y, bs):
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    xs = [torch.from_numpy(np.ascontiguousarray(x, dtype=np.int64)) for x in xs]
    y = torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    n = y.shape[0]
    model.train()

    def epoch():
        perm = torch.randperm(n)
        for i in range(0, n, bs):
            idx = perm[i:i + bs]
            opt.zero_grad()
            out = model(*[x[idx] for x in xs])
            loss = torch.nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y[idx].reshape(-1))
            loss.backward()
            opt.step()
    return epoch


def af_epoch(model, xs, y, bs):
    model.fit(xs, y, epochs=1, batch_size=bs, verbose=0)   # plans, caches
    return lambda: model.fit(xs, y, epochs=1, batch_size=bs, shuffle=True, verbose=0)


def run(name, torch, bs, steps, repeats):
    rng = np.random.default_rng(0)
    n = bs * steps
    if name == "encoder":
        xs = [rng.integers(0, VOCAB, (n, STEPS))]
        y = rng.integers(0, CLASSES, n)
        am, tm = af_encoder(), torch_encoder(torch)
    else:
        src = rng.integers(0, 10, (n, S_LEN))
        y = src[:, ::-1].copy()
        xs = [src, af.seq2seq.shift_right(y, 10)]
        am, tm = (af_seq2seq(), torch_seq2seq(torch)) if name == "seq2seq" else (af_lstm(), torch_lstm(torch))
    fa = af_epoch(am, xs if len(xs) > 1 else xs[0], y, bs)
    ft = torch_epoch(torch, tm, xs, y, bs)
    ft()
    ta, tt = best_interleaved([fa, ft], repeats)
    return n / ta, n / tt


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--models", nargs="+", default=["encoder", "seq2seq", "lstm"],
                   choices=["encoder", "seq2seq", "lstm"])
    p.add_argument("--batches", type=int, nargs="+", default=None,
                   help="batch sizes (default: 16 and 1 for the encoder, 64 for the seq2seq models)")
    p.add_argument("--steps", type=int, default=20, help="training steps per timed epoch")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    af.set_num_threads(args.threads)
    print(f"threads {args.threads}, isa {af.get_isa()}, torch {torch.__version__}, OMP_WAIT_POLICY "
          f"{os.environ.get('OMP_WAIT_POLICY', 'default')}; load {os.getloadavg()[0]:.1f}; {core_round_trip(af)}")
    print(f"{'model':10s} {'batch':>5s} {'annfast/s':>10s} {'torch/s':>10s} {'ratio':>6s}")
    for name in args.models:
        if name == "lstm" and not hasattr(af, "LSTM"):
            print("lstm: skipped (this build has no recurrent layers)")
            continue
        batches = args.batches or ([16, 1] if name == "encoder" else [64])
        for bs in batches:
            a, t = run(name, torch, bs, args.steps, args.repeats)
            print(f"{name:10s} {bs:5d} {a:10.1f} {t:10.1f} {a / t:6.2f}x", flush=True)


if __name__ == "__main__":
    main()
    print_pool_stats(af)
