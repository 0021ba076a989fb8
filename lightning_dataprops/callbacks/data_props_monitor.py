"""DataPropsMonitor: dataset properties and representation ID, measured while you train."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Literal

import lightning.pytorch as pl
import torch
from lightning.fabric.utilities.seed import _collect_rng_states, _set_rng_states
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor

from lightning_dataprops.callbacks._adversarial_probe import PAPER_EPS, AdversarialProbe
from lightning_dataprops.callbacks._data_source import fit_dataset
from lightning_dataprops.callbacks._forecasting import ConstantSpec, Forecaster
from lightning_dataprops.callbacks._layers import example_batch, layer_depths, penultimate_layer
from lightning_dataprops.callbacks._logging import log_to_trainer
from lightning_dataprops.functional.dataset_properties import dataset_properties
from lightning_dataprops.functional.representations import capture_representations, resolve_layers
from lightning_dataprops.functional.results import DatasetProperties
from lightning_dataprops.metrics import IntrinsicDimension
from lightning_dataprops.references import assess_label_sharpness, protocol_label_sharpness
from lightning_dataprops.sampling import Sample, read_first_item, sample_dataset

PREFIX = "dataprops"
ForwardFn = Callable[[torch.nn.Module, Tensor], Any]


class SharpLabelsWarning(UserWarning):
    """The training set's labels are sharp compared with natural-image references."""


@contextlib.contextmanager
def _untouched_rng() -> Iterator[None]:
    """Restore every global random state (torch, CUDA, numpy, python) afterwards."""
    states = _collect_rng_states(include_cuda=torch.cuda.is_available())
    try:
        yield
    finally:
        _set_rng_states(states)


class DataPropsMonitor(Callback):
    r"""Measure how hard the training set is to learn, and how the network represents it.

    At fit start, on a seeded, class-stratified sample of the training dataset (taken from the
    dataset behind the fit's data source, never by iterating your loader), it measures the
    intrinsic dimension ``d_data`` (MLE and TwoNN) and the label sharpness ``K_F`` in one exact
    neighbour pass, and warns when the labels are sharp compared with natural-image datasets
    measured under the same protocol. Every ``every_n_epochs`` epochs it measures the intrinsic
    dimension ``d_repr`` of the outputs of ``layers`` on a fixed probe sample (forward hooks, eval
    mode, ``no_grad``; the model's state, the random state and the training trajectory are left
    untouched). Under DDP the neighbour search is sharded across ranks and every rank gets the
    same values.

    Logged metrics (to every attached logger and to ``trainer.callback_metrics``, so that
    ``EarlyStopping`` and ``ModelCheckpoint`` can monitor them):

    - ``dataprops/label_sharpness``: exact ``K_F`` of the sample (``inf``: label conflict);
    - ``dataprops/data_id``: ``d_data`` by MLE (k neighbours, MacKay-Ghahramani pooling);
    - ``dataprops/data_id_twonn``: ``d_data`` by TwoNN;
    - ``dataprops/n_samples``: the sample size the fit-start values were measured on;
    - ``dataprops/label_sharpness_protocol``: ``K_F`` of the sample brought to the reference
      protocol (28x28 grayscale in [0, 1]), the value compared with the references;
    - ``dataprops/label_sharpness_ratio``: that value over the top of the natural-image band;
    - ``dataprops/repr_id/<layer>``: ``d_repr`` (MLE) of each monitored layer, per epoch;
    - ``dataprops/adv/<attack>/{clean_loss, adv_loss, loss_increase, clean_acc, robust_acc,
      success_rate}``: the robustness probe every ``adversarial_every_n_epochs`` epochs, on a
      fixed, seeded batch of validation data (training data without validation);
      ``loss_increase`` is the paper's measure (FGSM, eps = 2/255);
    - ``dataprops/forecast/{n_train, bound, loss_ratio_2x_data, repr_loss_ratio_2x_data}``: the
      scaling law's parameter-free predictions every epoch (``bound = K_F * N^(-1/d_data)``,
      ``loss_ratio_2x_data = 2^(-1/d_data)``: predicted test-loss ratio for twice the data);
      ``samples_for_target`` with ``target_loss``; ``test_loss`` and ``gap`` (predicted test
      loss minus training loss) only with a calibrated ``scaling_constant``;
      ``observed_val_loss`` beside them;
    - ``dataprops/time/fit_start``, ``dataprops/time/repr``, ``dataprops/time/adv``: seconds.

    With a ``WandbLogger`` it also writes the fit-start properties to the run's summary and
    config, a table of the sharpest differently-labelled pairs with both images side by side
    (``dataprops/sharpest_pairs``), the d_repr profile as a table and a line plot
    (``dataprops/repr_id_profile``, ``dataprops/repr_id_plot``) and a rate-limited alert when the
    labels are sharp.

    Args:
        max_samples: size of the fit-start sample (``None``: the whole training set). The default
            matches the sample size of the shipped natural-image references.
        repr_samples: size of the fixed probe sample for ``d_repr``.
        seed: seed of both samples.
        k: neighbours for the MLE estimates.
        layers: module names or glob patterns whose outputs are monitored; default: the
            penultimate layer (the input of the output head), found automatically.
        every_n_epochs: measure ``d_repr`` every this many epochs (0 disables it).
        adversarial_every_n_epochs: run the robustness probe every this many epochs (0: never).
        attacks: name -> ``"fgsm"``/``"pgd"``, an attack instance (torchattacks accepted) or a
            factory taking the model; default FGSM and a 3-step PGD at ``attack_eps``.
        adversarial_samples: size of the fixed probe batch for the attacks.
        attack_eps: L-inf budget of the built-in attacks in input units (paper: 2/255 on [0, 1]).
        data_range: valid input range for the attacks; ``"auto"``: ``(0, 1)`` when the probe
            batch lies in it, else the batch's own minimum and maximum.
        normalization: ``(mean, std)`` applied inside the model's forward by the built-in
            attacks, when the model expects normalized inputs but the data is in pixel space.
        scaling_constant: ``C`` of ``L = C K_F N^(-1/d)``: a number, a calibration JSON from
            ``dataprops calibrate``, or ``"reproduction"`` (the constant fitted by the project's
            reproduction experiment, for its regime: small CNNs on 28x28 binary tasks);
            enables ``forecast/test_loss`` and ``forecast/gap``.
        target_loss: a target test loss ``L*`` for ``forecast/samples_for_target``.
        val_loss_key, train_loss_key: names under which the module logs its losses.
        calibration_csv: append this run (``n_train, d_data, label_sharpness, test_loss``) to
            this CSV at fit end, to calibrate ``C`` from several runs later.
        pool: ``"avg"``/``"max"`` pooling of spatial layer outputs, or ``None`` to flatten.
        batch_size: inputs per forward pass of the probe.
        input_key, target_key: dict keys or tuple positions of input and target in an item.
        input_fn, target_fn: callables item -> input / target (override the keys).
        forward_fn: callable ``(module, inputs) -> output`` for the probe forward pass; default
            ``module(inputs)``.
        top_pairs: how many of the sharpest pairs to report.
        warn_sharp_labels: warn (and alert in W&B) when the labels are sharp.
        alert_wait_s: at most one W&B alert per this many seconds.
        memory_budget_mb: working-memory bound of the neighbour search.
        progress: show progress bars (rank zero only) on long work.
        name: distinguishes the state of several monitors in one trainer.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> from lightning_dataprops import DataPropsMonitor
        >>> trainer = Trainer(callbacks=[DataPropsMonitor(every_n_epochs=2)], logger=False)
    """

    def __init__(
        self,
        *,
        max_samples: int | None = 1000,
        repr_samples: int = 500,
        seed: int = 0,
        k: int = 20,
        layers: str | Sequence[str] | None = None,
        every_n_epochs: int = 1,
        adversarial_every_n_epochs: int = 5,
        attacks: Mapping[str, Any] | None = None,
        adversarial_samples: int = 64,
        attack_eps: float = PAPER_EPS,
        data_range: tuple[float, float] | Literal["auto"] | None = "auto",
        normalization: tuple[Sequence[float], Sequence[float]] | None = None,
        scaling_constant: ConstantSpec = None,
        target_loss: float | None = None,
        val_loss_key: str = "val_loss",
        train_loss_key: str = "train_loss",
        calibration_csv: str | None = None,
        pool: Literal["avg", "max"] | None = None,
        batch_size: int = 512,
        input_key: str | int | None = None,
        target_key: str | int | None = None,
        input_fn: Callable[[Any], Any] | None = None,
        target_fn: Callable[[Any], Any] | None = None,
        forward_fn: ForwardFn | None = None,
        top_pairs: int = 8,
        warn_sharp_labels: bool = True,
        alert_wait_s: float = 3600.0,
        memory_budget_mb: float = 512.0,
        progress: bool = True,
        name: str | None = None,
    ) -> None:
        if max_samples is not None and max_samples < k + 1:
            raise ValueError(f"max_samples={max_samples} must exceed k={k}; raise it or lower k.")
        if repr_samples < k + 1:
            raise ValueError(f"repr_samples={repr_samples} must exceed k={k}; raise it or lower k.")
        if every_n_epochs < 0:
            raise ValueError(
                f"every_n_epochs must be >= 0 (0 disables d_repr), got {every_n_epochs}."
            )
        if adversarial_every_n_epochs < 0:
            raise ValueError(
                f"adversarial_every_n_epochs must be >= 0 (0 disables the probe), got "
                f"{adversarial_every_n_epochs}."
            )
        if adversarial_samples < 1:
            raise ValueError(f"adversarial_samples must be >= 1, got {adversarial_samples}.")
        if pool not in (None, "avg", "max"):
            raise ValueError(f"pool must be None, 'avg' or 'max', got {pool!r}.")
        self.max_samples = max_samples
        self.repr_samples = repr_samples
        self.seed = seed
        self.k = k
        self.layers = [layers] if isinstance(layers, str) else (list(layers) if layers else None)
        self.every_n_epochs = every_n_epochs
        self.pool = pool
        self.adversarial_every_n_epochs = adversarial_every_n_epochs
        self.adversarial_samples = adversarial_samples
        self.data_range = data_range
        mean, std = normalization if normalization is not None else (None, None)
        self.probe = AdversarialProbe(attacks, eps=attack_eps, mean=mean, std=std, seed=seed)
        self.forecaster = Forecaster(
            constant=scaling_constant,
            target_loss=target_loss,
            val_loss_key=val_loss_key,
            train_loss_key=train_loss_key,
            calibration_csv=calibration_csv,
        )
        self.batch_size = batch_size
        self.input_key = input_key
        self.target_key = target_key
        self.input_fn = input_fn
        self.target_fn = target_fn
        self.forward_fn = forward_fn
        self.top_pairs = top_pairs
        self.warn_sharp_labels = warn_sharp_labels
        self.alert_wait_s = alert_wait_s
        self.memory_budget_mb = memory_budget_mb
        self.progress = progress
        self.name = name
        self.fit_start_state: dict[str, Any] | None = None
        self.repr_history: list[dict[str, Any]] = []
        self._dataset: Any = None
        self._probe: Tensor | None = None
        self._attack_batch: tuple[Tensor, Tensor] | None = None
        self.last_metrics: dict[str, float] = {}
        self._n_train = 0
        self._layer_names: list[str] = []
        self._depths: dict[str, int] = {}
        self._panels: Any = None
        self._recomputed = False

    # ------------------------------------------------------------------ state
    @property
    def state_key(self) -> str:
        return self._generate_state_key(
            name=self.name, seed=self.seed, max_samples=self.max_samples
        )

    def state_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "fit_start": self.fit_start_state,
            "repr_history": list(self.repr_history),
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.fit_start_state = state_dict.get("fit_start")
        self.repr_history = list(state_dict.get("repr_history", []))

    # ------------------------------------------------------------------ setup
    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        dataset = fit_dataset(trainer, "train")
        if dataset is None:
            raise ValueError(
                "DataPropsMonitor found no training data: define train_dataloader() on the "
                "LightningModule or DataModule, or pass train_dataloaders to fit()."
            )
        self._dataset = dataset
        self._n_train = len(dataset) if hasattr(dataset, "__len__") else 0
        first_input, _ = read_first_item(
            dataset,
            input_key=self.input_key,
            target_key=self.target_key,
            input_fn=self.input_fn,
            target_fn=self.target_fn,
        )
        if self.layers is not None:
            self._layer_names = [name for name, _ in resolve_layers(pl_module, self.layers)]
        if self.every_n_epochs:
            example = example_batch(
                first_input[None].expand(2, *first_input.shape), pl_module.device
            )
            forward = self._forward(trainer)
            with _untouched_rng():
                if self.layers is None:
                    self._layer_names = [penultimate_layer(pl_module, example, forward)]
                self._depths = layer_depths(pl_module, self._layer_names, example, forward)
        if trainer.is_global_zero:
            from lightning_dataprops.integrations.wandb import WandbPanels, find_wandb_logger

            logger = find_wandb_logger(trainer)
            self._panels = (
                None if logger is None else WandbPanels(logger, alert_wait_s=self.alert_wait_s)
            )

    def _forward(self, trainer: pl.Trainer) -> ForwardFn:
        """The probe's forward pass, in the trainer's precision context."""
        user_forward = self.forward_fn

        def forward(module: torch.nn.Module, inputs: Tensor) -> Any:
            with trainer.precision_plugin.forward_context():
                return module(inputs) if user_forward is None else user_forward(module, inputs)

        return forward

    def _sample(self, max_samples: int | None, dataset: Any = None) -> Sample:
        """A seeded sample of ``dataset`` (default: the training dataset), items read as set up."""
        return sample_dataset(
            self._dataset if dataset is None else dataset,
            max_samples=max_samples,
            seed=self.seed,
            input_key=self.input_key,
            target_key=self.target_key,
            input_fn=self.input_fn,
            target_fn=self.target_fn,
        )

    # ------------------------------------------------------------------ fit start
    def on_fit_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.fit_start_state is not None:
            rank_zero_info("DataPropsMonitor: fit-start properties restored from the checkpoint.")
            self._publish_fit_start(trainer, self.fit_start_state, None)
            return
        with _untouched_rng():
            started = time.perf_counter()
            sample = self._sample(self.max_samples)
            props = dataset_properties(
                sample.inputs,
                sample.targets,
                k=self.k,
                top_pairs=self.top_pairs,
                memory_budget_mb=self.memory_budget_mb,
                device=pl_module.device,
                distributed=trainer.world_size > 1,
                progress=self.progress and trainer.is_global_zero,
            )
            state = self._fit_start_state(sample, props)
            if not self._n_train:
                self._n_train = len(sample)
            state["metrics"][f"{PREFIX}/time/fit_start"] = time.perf_counter() - started
        self._recomputed = True
        self.fit_start_state = state
        self._publish_fit_start(trainer, state, sample)

    def _fit_start_state(self, sample: Sample, props: DatasetProperties) -> dict[str, Any]:
        """Everything logged at fit start, in plain types (it goes into checkpoints)."""
        metrics: dict[str, float] = {
            f"{PREFIX}/data_id": props.mle,
            f"{PREFIX}/data_id_twonn": props.twonn,
            f"{PREFIX}/n_samples": float(props.n),
        }
        state: dict[str, Any] = {
            "metrics": metrics,
            "n": props.n,
            "input_shape": list(props.input_shape),
            "duplicates": props.duplicates.n_duplicates,
            "pairs": [],
            "assessment": None,
        }
        sharpness = props.label_sharpness_result
        if sharpness is None:
            rank_zero_info(
                "DataPropsMonitor: the training data has no targets; label sharpness is skipped."
            )
            return state
        metrics[f"{PREFIX}/label_sharpness"] = sharpness.value
        state["pairs"] = [
            {
                **pair.to_dict(),
                "index_i": int(sample.indices[pair.i]),
                "index_j": int(sample.indices[pair.j]),
            }
            for pair in sharpness.pairs
        ]
        if sharpness.target_type == "class" and sample.targets is not None:
            state["assessment"] = self._assess(sample, sharpness.n_classes or 2, metrics)
        return state

    def _assess(
        self, sample: Sample, n_classes: int, metrics: dict[str, float]
    ) -> dict[str, Any] | None:
        """Compare K_F with the natural-image references under their protocol."""
        if len(sample.input_shape) < 2:
            rank_zero_info(
                "DataPropsMonitor: inputs are not images; no reference exists to compare K_F with."
            )
            return None
        assert sample.targets is not None
        protocol = protocol_label_sharpness(sample.inputs, sample.targets)
        assessment = assess_label_sharpness(protocol.value, len(sample), n_classes)
        metrics[f"{PREFIX}/label_sharpness_protocol"] = protocol.value
        metrics[f"{PREFIX}/label_sharpness_ratio"] = assessment.ratio
        return {"is_sharp": assessment.is_sharp, "message": assessment.message}

    def _publish_fit_start(
        self, trainer: pl.Trainer, state: dict[str, Any], sample: Sample | None
    ) -> None:
        metrics = state["metrics"]
        log_to_trainer(trainer, metrics)
        assessment = state.get("assessment")
        message = None
        if assessment and assessment["is_sharp"]:
            message = assessment["message"]
            if state["pairs"]:
                top = state["pairs"][0]
                message += (
                    f" The sharpest pair is training samples {top['index_i']} and {top['index_j']} "
                    f"(labels {top['label_i']} vs {top['label_j']}, "
                    f"distance {top['distance']:.4g}): "
                    "inspect such pairs for label errors or near-duplicates."
                )
            if self.warn_sharp_labels:
                rank_zero_warn(message, category=SharpLabelsWarning)
        if self._panels is None or not trainer.is_global_zero:
            return
        context = {
            "n": state["n"],
            "input_shape": state["input_shape"],
            "k": self.k,
            "seed": self.seed,
        }
        self._panels.fit_start(metrics, context)
        if sample is not None and state["pairs"]:
            self._panels.sharpest_pairs(state["pairs"], sample.inputs, step=trainer.global_step)
        if message is not None and self.warn_sharp_labels:
            self._panels.alert("Sharp labels in the training set", message)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Lightning clears callback_metrics after the sanity check: put the fit-start values back
        # so that EarlyStopping and ModelCheckpoint can monitor them.
        if self.fit_start_state is not None:
            for name, value in self.fit_start_state["metrics"].items():
                trainer.callback_metrics[name] = torch.tensor(float(value))

    # ------------------------------------------------------------------ d_repr
    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # Runs after the epoch's validation, so the epoch's losses are in callback_metrics.
        if trainer.sanity_checking:
            return
        epoch = trainer.current_epoch + 1
        metrics: dict[str, float] = {}
        with _untouched_rng():
            if self.every_n_epochs and epoch % self.every_n_epochs == 0:
                metrics.update(self._measure_representations(trainer, pl_module))
            if self.adversarial_every_n_epochs and epoch % self.adversarial_every_n_epochs == 0:
                metrics.update(self._probe_robustness(trainer, pl_module))
        metrics.update(self._forecast(trainer))
        if metrics:
            self.last_metrics = metrics
            log_to_trainer(trainer, metrics)

    def _measure_representations(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, float]:
        started = time.perf_counter()
        if self._probe is None:
            self._probe = self._sample(self.repr_samples).inputs
        features = capture_representations(
            pl_module,
            self._probe[trainer.global_rank :: trainer.world_size],
            self._layer_names,
            batch_size=self.batch_size,
            pool=self.pool,
            device=pl_module.device,
            forward=self._forward(trainer),
        )
        metrics: dict[str, float] = {}
        for layer, representation in features.items():
            # Each rank holds its share of the probe; the metric gathers the shares and shards
            # the neighbour search, so every rank computes the same value.
            metric = IntrinsicDimension(
                estimator="mle",
                k=self.k,
                max_samples=len(self._probe),
                seed=self.seed,
                memory_budget_mb=self.memory_budget_mb,
            ).to(pl_module.device)
            metric.update(representation.to(pl_module.device))
            value = float(metric.compute())
            metrics[f"{PREFIX}/repr_id/{layer}"] = value
            self.repr_history.append(
                {
                    "epoch": trainer.current_epoch,
                    "layer": layer,
                    "depth": self._depths.get(layer, 0),
                    "repr_id": value,
                }
            )
        metrics[f"{PREFIX}/time/repr"] = time.perf_counter() - started
        if self._panels is not None and trainer.is_global_zero:
            self._panels.representation_profile(self.repr_history, step=trainer.global_step)
        return metrics

    def _attack_inputs(self, trainer: pl.Trainer) -> tuple[Tensor, Tensor] | None:
        """The fixed probe batch: validation data if there is any, else training data."""
        if self._attack_batch is not None:
            return self._attack_batch
        sample = self._sample(self.adversarial_samples, fit_dataset(trainer, "val"))
        targets = sample.targets
        if targets is None or targets.is_floating_point() or targets.ndim != 1:
            rank_zero_info(
                "DataPropsMonitor: the robustness probe needs class targets; it is skipped."
            )
            self.adversarial_every_n_epochs = 0
            return None
        low, high = float(sample.inputs.min()), float(sample.inputs.max())
        if self.data_range == "auto":
            inside = low >= 0.0 and high <= 1.0
            self.probe.data_range = (0.0, 1.0) if inside else (low, high)
            if not inside:
                rank_zero_info(
                    f"DataPropsMonitor: inputs lie in [{low:.3g}, {high:.3g}], not [0, 1]; the "
                    "attacks clip to that range and eps is in those units (set data_range= "
                    "and normalization= to attack in pixel space)."
                )
        else:
            self.probe.data_range = self.data_range
        self._attack_batch = (sample.inputs, targets)
        return self._attack_batch

    def _probe_robustness(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule
    ) -> dict[str, float]:
        started = time.perf_counter()
        batch = self._attack_inputs(trainer)
        if batch is None:
            return {}
        metrics = self.probe.run(trainer, pl_module, *batch)
        metrics[f"{PREFIX}/time/adv"] = time.perf_counter() - started
        return metrics

    def _latest_repr_id(self) -> float | None:
        if not self.repr_history:
            return None
        deepest = max(self.repr_history, key=lambda row: (row["epoch"], row["depth"]))
        return float(deepest["repr_id"])

    def _forecast(self, trainer: pl.Trainer) -> dict[str, float]:
        if self.fit_start_state is None:
            return {}
        prediction = self.forecaster.current(
            trainer, self.fit_start_state, self._n_train, self._latest_repr_id()
        )
        if prediction is None:
            return {}
        metrics = prediction.metrics(f"{PREFIX}/forecast")
        observed = self.forecaster.val_loss(trainer)
        if observed is not None:
            metrics[f"{PREFIX}/forecast/observed_val_loss"] = observed
        if self._panels is not None and trainer.is_global_zero:
            self._panels.data_scaling(prediction, step=trainer.global_step)
        return metrics

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.fit_start_state is not None:
            self.forecaster.record_run(trainer, self.fit_start_state, self._n_train)

    @property
    def recomputed(self) -> bool:
        """Whether the last fit computed the fit-start properties (``False`` when restored)."""
        return self._recomputed
