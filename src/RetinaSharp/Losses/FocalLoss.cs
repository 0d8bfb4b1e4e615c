// The sigmoid focal loss of Lin et al. 2017, "Focal Loss for Dense Object Detection", section 3.2 (α-balanced
// form, eq. 5) and section 4 (normalised by the number of foreground anchors). Values match
// torchvision.ops.sigmoid_focal_loss (0.14) for the dense {0,1} form; the class-index form matches how
// torchvision's RetinaNetClassificationHead.compute_loss builds one-hot targets and drops ignored anchors.

using TorchSharp;
using static RetinaSharp.TorchScalars;
using static TorchSharp.torch;

namespace RetinaSharp.Losses;

/// <summary>
/// The focal loss FL(p_t) = -α_t (1 - p_t)^γ log(p_t) (paper section 3.2, eq. 5), with p_t = σ(x) for a positive
/// target and 1 - σ(x) for a negative one, and α_t = α for positives, 1 - α for negatives.
/// γ = 0 with α disabled is binary cross-entropy with logits. As a module, <c>forward(logits, targets)</c> takes
/// either {0,1} targets shaped like the logits, or int64 class indices shaped like the logits without their
/// last (class) dimension (see <see cref="SigmoidFocalLossFromIndices"/>).
/// </summary>
/// <remarks>
/// Computed in log-sigmoid form (no clamped probabilities): finite loss and gradient for |logit| up to 1e4 at every
/// γ >= 0, including 0 &lt; γ &lt; 1 where d(1 - p_t)^γ/dp_t is unbounded but d(1 - p_t)^γ/dx is not.
/// NaN logits give a NaN loss. Two paths compute the same values (see <see cref="FocalLossPath"/>): a fused one-pass
/// CPU kernel for float32/float64 CPU tensors (non-contiguous logits are copied first), and a composite path of
/// tensor ops for everything else.
/// </remarks>
public sealed partial class FocalLoss : nn.Module<Tensor, Tensor, Tensor>
{
    private readonly double[]? _alphaPerClass;

    /// <summary>Creates the module; arguments as in <see cref="SigmoidFocalLoss"/>.</summary>
    /// <param name="alpha">α in [0, 1] for positives (1 - α for negatives); null disables the weighting. Paper default 0.25.</param>
    /// <param name="gamma">The focusing parameter γ >= 0. Paper default 2.</param>
    /// <param name="reduction">How element losses are reduced.</param>
    /// <param name="normalizer">Divisor of <see cref="FocalReduction.Normalized"/>, clamped to at least 1 (settable per batch via <see cref="Normalizer"/>).</param>
    /// <param name="alphaPerClass">Optional per-class α of length C (overrides <paramref name="alpha"/>).</param>
    /// <exception cref="ArgumentException">γ &lt; 0 or not finite, α or a per-class α outside [0, 1], a NaN normaliser.</exception>
    public FocalLoss(double? alpha = 0.25, double gamma = 2.0, FocalReduction reduction = FocalReduction.Mean,
        double normalizer = 1.0, IReadOnlyList<double>? alphaPerClass = null) : base(nameof(FocalLoss))
    {
        ValidateScalars(alpha, gamma, normalizer);
        ValidateReduction(reduction);
        if (alphaPerClass is not null)
            for (int c = 0; c < alphaPerClass.Count; c++)
                if (!(alphaPerClass[c] >= 0 && alphaPerClass[c] <= 1))
                    throw new ArgumentException($"alphaPerClass[{c}] must be in [0, 1], but it is {Fmt(alphaPerClass[c])}.", nameof(alphaPerClass));
        Alpha = alpha;
        Gamma = gamma;
        Reduction = reduction;
        _normalizer = normalizer;
        _alphaPerClass = alphaPerClass?.ToArray();
        RegisterComponents();
    }

    /// <summary>α for positives (1 - α for negatives), or null when disabled.</summary>
    public double? Alpha { get; }

    /// <summary>The focusing parameter γ >= 0.</summary>
    public double Gamma { get; }

    /// <summary>The reduction applied by <see cref="forward"/>.</summary>
    public FocalReduction Reduction { get; }

    private double _normalizer;

    /// <summary>
    /// Divisor of <see cref="FocalReduction.Normalized"/> (the number of foreground anchors of the batch), clamped to
    /// at least 1 when used. A detector sets it before each <see cref="forward"/>.
    /// </summary>
    /// <exception cref="ArgumentException">Set to NaN.</exception>
    public double Normalizer
    {
        get => _normalizer;
        set
        {
            ValidateScalars(null, 0, value);
            _normalizer = value;
        }
    }

    /// <summary>
    /// The focal loss of <paramref name="logits"/> against <paramref name="targets"/>: a {0,1} tensor shaped like the
    /// logits, or an integer tensor of class indices shaped like the logits without the last dimension
    /// (0..C-1 foreground, -1 background, -2 ignored).
    /// </summary>
    /// <returns>A scalar, or a tensor shaped like the logits for <see cref="FocalReduction.None"/>.</returns>
    /// <exception cref="ArgumentException">Shapes that fit neither form, or bad target values.</exception>
    public override Tensor forward(Tensor logits, Tensor targets)
    {
        using var scope = NewDisposeScope();
        Tensor? perClass = _alphaPerClass is null ? null : tensor(_alphaPerClass, logits.dtype);
        bool indexForm = !targets.is_floating_point() && targets.dtype != ScalarType.Bool &&
                         logits.dim() >= 1 && targets.shape.SequenceEqual(logits.shape[..^1]);
        var loss = indexForm
            ? SigmoidFocalLossFromIndices(logits, targets, Alpha, Gamma, Reduction, _normalizer, perClass)
            : SigmoidFocalLoss(logits, targets, Alpha, Gamma, Reduction, _normalizer, perClass);
        return loss.MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sigmoid focal loss with dense targets (torchvision.ops.sigmoid_focal_loss):
    /// FL = -α_t (1 - p_t)^γ log(p_t) per element (paper section 3.2, eq. 5).
    /// </summary>
    /// <param name="logits">Any shape (e.g. (N, C) or (B, A, C)), floating dtype, any device.</param>
    /// <param name="targets">Same shape as <paramref name="logits"/>, values exactly 0 or 1 (any dtype; no gradient flows to it).</param>
    /// <param name="alpha">α in [0, 1] for positives, 1 - α for negatives; null disables the weighting. Paper default 0.25.</param>
    /// <param name="gamma">The focusing parameter γ >= 0 (0 gives α-weighted cross-entropy). Paper default 2.</param>
    /// <param name="reduction">None (shaped like the logits), Sum, Mean (over all elements) or Normalized.</param>
    /// <param name="normalizer">Divisor of <see cref="FocalReduction.Normalized"/>: the loss is sum / max(1, normalizer).</param>
    /// <param name="alphaPerClass">Optional (C) per-class α in [0, 1] over the logits' last dimension: α_c for positives
    /// of class c, 1 - α_c for its negatives. Overrides <paramref name="alpha"/>; no gradient flows to it.</param>
    /// <param name="path">Fused CPU kernel, composite tensor ops, or automatic choice.</param>
    /// <returns>A scalar tensor, or one shaped like the logits for <see cref="FocalReduction.None"/>; dtype of the logits.</returns>
    /// <exception cref="ArgumentException">Mismatched shapes or devices, γ &lt; 0, α outside [0, 1], a target other than 0/1,
    /// a malformed <paramref name="alphaPerClass"/>, a NaN normaliser, or <see cref="FocalLossPath.Fused"/> on an unsupported input.</exception>
    public static Tensor SigmoidFocalLoss(Tensor logits, Tensor targets, double? alpha = 0.25, double gamma = 2.0,
        FocalReduction reduction = FocalReduction.Mean, double normalizer = 1.0, Tensor? alphaPerClass = null,
        FocalLossPath path = FocalLossPath.Auto)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(targets);
        ValidateScalars(alpha, gamma, normalizer);
        ValidateReduction(reduction);
        RequireFloating(logits);
        if (!targets.shape.SequenceEqual(logits.shape))
            throw new ArgumentException($"targets must have the shape of logits {Shape(logits)}, but it has {Shape(targets)}.", nameof(targets));
        if (!SameDevice(targets, logits))
            throw new ArgumentException($"targets must be on the device of logits ({logits.device}), but it is on {targets.device}.", nameof(targets));
        var perClass = AlphaPerClassValues(alphaPerClass, logits);

        using var scope = NewDisposeScope();
        if (UseFused(logits, path))
        {
            var t = targets.to(logits.dtype).contiguous();
            var options = new FocalKernelOptions(alpha, gamma, perClass, reduction, normalizer);
            return RunFused(logits, t, options, indexForm: false).MoveToOuterDisposeScope();
        }
        var tf = targets.dtype == ScalarType.Bool ? targets.to(logits.dtype) : targets;
        var bad = tf.ne(Zero).logical_and(tf.ne(One));
        if (bad.any().item<bool>())
        {
            long at = bad.flatten().nonzero()[0, 0].item<long>();
            double value = tf.flatten()[at].to(ScalarType.Float64).item<double>();
            throw new ArgumentException($"targets must be 0 or 1, but targets (flat index {at}) is {Fmt(value)}.", nameof(targets));
        }
        return FocalLossComposite.Sigmoid(logits, tf.eq(One), null, alpha, gamma, alphaPerClass, reduction, normalizer, logits.numel())
            .MoveToOuterDisposeScope();
    }

    /// <summary>
    /// Sigmoid focal loss in the detector's form (torchvision RetinaNetClassificationHead.compute_loss): one class index
    /// per anchor instead of a one-hot target. Each anchor's target row is 1 at its class and 0 elsewhere
    /// (all 0 for background); ignored anchors contribute neither loss nor gradient, exactly as if they were absent.
    /// </summary>
    /// <param name="logits">(N, C), or (..., C) with <paramref name="classIndices"/> shaped (...); floating dtype.</param>
    /// <param name="classIndices">(N) int64 (int32 accepted): 0..C-1 = foreground class, -1 = background, -2 = ignored.</param>
    /// <param name="alpha">α in [0, 1] for positives, 1 - α for negatives; null disables the weighting. Paper default 0.25.</param>
    /// <param name="gamma">The focusing parameter γ >= 0. Paper default 2.</param>
    /// <param name="reduction">None ((N, C), zero rows for ignored anchors), Sum, Mean (over the C logits of every
    /// non-ignored anchor) or Normalized (sum / max(1, normalizer), the paper's division by the foreground count).</param>
    /// <param name="normalizer">Divisor of <see cref="FocalReduction.Normalized"/>, typically the number of foreground anchors.</param>
    /// <param name="alphaPerClass">Optional (C) per-class α in [0, 1]; overrides <paramref name="alpha"/>.</param>
    /// <param name="path">Fused CPU kernel, composite tensor ops, or automatic choice.</param>
    /// <returns>A scalar tensor, or a tensor shaped like the logits for <see cref="FocalReduction.None"/>.</returns>
    /// <exception cref="ArgumentException">Mismatched shapes or devices, γ &lt; 0, α outside [0, 1], an index outside -2..C-1,
    /// a malformed <paramref name="alphaPerClass"/>, a NaN normaliser, or <see cref="FocalLossPath.Fused"/> on an unsupported input.</exception>
    public static Tensor SigmoidFocalLossFromIndices(Tensor logits, Tensor classIndices, double? alpha = 0.25, double gamma = 2.0,
        FocalReduction reduction = FocalReduction.Normalized, double normalizer = 1.0, Tensor? alphaPerClass = null,
        FocalLossPath path = FocalLossPath.Auto)
    {
        ArgumentNullException.ThrowIfNull(logits);
        ArgumentNullException.ThrowIfNull(classIndices);
        ValidateScalars(alpha, gamma, normalizer);
        ValidateReduction(reduction);
        RequireFloating(logits);
        if (logits.dim() < 1 || !classIndices.shape.SequenceEqual(logits.shape[..^1]))
            throw new ArgumentException(
                $"classIndices must have the shape of logits {Shape(logits)} without its last (class) dimension, but it has {Shape(classIndices)}.", nameof(classIndices));
        if (classIndices.is_floating_point() || classIndices.dtype == ScalarType.Bool || classIndices.is_complex())
            throw new ArgumentException($"classIndices must be an integer tensor (int64), but it is {classIndices.dtype}.", nameof(classIndices));
        if (!SameDevice(classIndices, logits))
            throw new ArgumentException($"classIndices must be on the device of logits ({logits.device}), but it is on {classIndices.device}.", nameof(classIndices));
        var perClass = AlphaPerClassValues(alphaPerClass, logits);
        long classes = logits.shape[^1];

        using var scope = NewDisposeScope();
        var x = logits.reshape(-1, classes);                   // (N, C)
        var idx = classIndices.reshape(-1).to(ScalarType.Int64); // (N)
        Tensor loss;
        if (UseFused(x, path))
        {
            var options = new FocalKernelOptions(alpha, gamma, perClass, reduction, normalizer);
            loss = RunFused(x, idx.contiguous(), options, indexForm: true);
        }
        else
        {
            using var classCount = classes.ToScalar();
            var bad = idx.lt(MinusTwo).logical_or(idx.ge(classCount));
            if (bad.any().item<bool>())
            {
                long at = bad.nonzero()[0, 0].item<long>();
                throw new ArgumentException(
                    $"classIndices must be in -2..{classes - 1} (-2 ignored, -1 background, 0..C-1 foreground class), but classIndices[{at}] is {idx[at].item<long>()}.",
                    nameof(classIndices));
            }
            var valid = idx.ne(MinusTwo).unsqueeze(1);                                              // (N, 1)
            var positive = idx.unsqueeze(1).eq(arange(Zero, classCount, One, device: x.device)); // (N, C)
            long meanCount = valid.sum().item<long>() * classes;
            loss = FocalLossComposite.Sigmoid(x, positive, valid, alpha, gamma, alphaPerClass, reduction, normalizer, meanCount);
        }
        if (reduction == FocalReduction.None)
            loss = loss.reshape(logits.shape);
        return loss.MoveToOuterDisposeScope();
    }

    private static bool UseFused(Tensor logits, FocalLossPath path)
    {
        if (path == FocalLossPath.Composite) return false;
        bool ok = FocalLossCpuKernel.Supports(logits);
        if (path == FocalLossPath.Fused && !ok)
            throw new ArgumentException(
                $"the fused path needs float32/float64 CPU logits under 2 GiB, but logits is {logits.dtype} on {logits.device} with {logits.numel()} elements.",
                nameof(logits));
        return ok;
    }

    private static Tensor RunFused(Tensor logits, Tensor targets, FocalKernelOptions options, bool indexForm)
    {
        logits = logits.contiguous();   // the same tensor when already contiguous; a differentiable copy otherwise
        if (is_grad_enabled() && logits.requires_grad)
        {
            // Through a view: the view's backward hands autograd a fresh tensor over the saved gradient's storage,
            // which a leaf's gradient accumulator then adopts instead of cloning 4 bytes per logit.
            return FusedFocalLossFunction.apply(logits.view(logits.shape), targets, options, indexForm);
        }
        var (loss, _) = indexForm
            ? FocalLossCpuKernel.Indices(logits, targets, options, computeGrad: false)
            : FocalLossCpuKernel.Dense(logits, targets, options, computeGrad: false);
        return loss;
    }

    /// <summary>Validates γ, α and the normaliser shared by every form.</summary>
    private static void ValidateScalars(double? alpha, double gamma, double normalizer)
    {
        if (!(gamma >= 0) || double.IsPositiveInfinity(gamma))
            throw new ArgumentException($"gamma must be a finite number >= 0, but it is {Fmt(gamma)}.", nameof(gamma));
        if (alpha.HasValue && !(alpha.Value >= 0 && alpha.Value <= 1))
            throw new ArgumentException($"alpha must be in [0, 1] (or null to disable it), but it is {Fmt(alpha.Value)}.", nameof(alpha));
        if (double.IsNaN(normalizer))
            throw new ArgumentException("normalizer must be a number (it is clamped to at least 1), but it is NaN.", nameof(normalizer));
    }

    private static void ValidateReduction(FocalReduction reduction)
    {
        if (!Enum.IsDefined(reduction))
            throw new ArgumentException($"reduction must be None, Sum, Mean or Normalized, but it is {(int)reduction}.", nameof(reduction));
    }

    private static void RequireFloating(Tensor logits)
    {
        if (!logits.is_floating_point())
            throw new ArgumentException($"logits must be a floating-point tensor, but it is {logits.dtype}.", nameof(logits));
    }

    /// <summary>Checks a per-class α vector against the logits' class dimension and returns its values (null when absent).</summary>
    private static double[]? AlphaPerClassValues(Tensor? alphaPerClass, Tensor logits)
    {
        if (alphaPerClass is null) return null;
        long classes = logits.dim() == 0 ? 1 : logits.shape[^1];
        if (alphaPerClass.dim() != 1 || alphaPerClass.shape[0] != classes)
            throw new ArgumentException(
                $"alphaPerClass must have shape ({classes}) (the logits' last dimension), but it has {Shape(alphaPerClass)}.", nameof(alphaPerClass));
        using var scope = NewDisposeScope();
        var values = alphaPerClass.detach().cpu().to(ScalarType.Float64).data<double>().ToArray();
        for (int c = 0; c < values.Length; c++)
            if (!(values[c] >= 0 && values[c] <= 1))
                throw new ArgumentException($"alphaPerClass[{c}] must be in [0, 1], but it is {Fmt(values[c])}.", nameof(alphaPerClass));
        return values;
    }

    private static bool SameDevice(Tensor a, Tensor b) => a.device_type == b.device_type && a.device_index == b.device_index;

    private static string Shape(Tensor t) => "(" + string.Join(", ", t.shape) + ")";

    private static string Fmt(double v) => v.ToString("R", System.Globalization.CultureInfo.InvariantCulture);
}
