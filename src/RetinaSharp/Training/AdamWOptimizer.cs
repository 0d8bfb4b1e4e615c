// AdamW, torch.optim.AdamW semantics (amsgrad off): Adam with decoupled weight decay
// (Loshchilov & Hutter 2019).
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Training;

/// <summary>AdamW (torch.optim.AdamW, amsgrad off): p *= 1 - lr*wd; m, v moving averages; p -= lr * m̂ / (sqrt(v̂) + eps).</summary>
public sealed class AdamWOptimizer : TrainingOptimizer
{
    private readonly Tensor?[] _m;
    private readonly Tensor?[] _v;

    /// <summary>Creates the optimiser.</summary>
    /// <param name="parameters">Named parameters; those without requires_grad are skipped.</param>
    /// <param name="weightDecay">Decoupled weight decay (&gt;= 0).</param>
    /// <param name="beta1">First-moment decay in [0, 1).</param>
    /// <param name="beta2">Second-moment decay in [0, 1).</param>
    /// <param name="eps">Denominator epsilon.</param>
    /// <param name="normParameters">Parameter names that get <paramref name="normWeightDecay"/> instead (see <see cref="TrainingOptimizer.NormParameterNames"/>).</param>
    /// <param name="normWeightDecay">Their weight decay, or null for <paramref name="weightDecay"/>.</param>
    /// <exception cref="ArgumentException">A coefficient is out of range.</exception>
    public AdamWOptimizer(IEnumerable<(string Name, Tensor Parameter)> parameters, double weightDecay = 1e-2, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8,
        IReadOnlySet<string>? normParameters = null, double? normWeightDecay = null) : base(parameters)
    {
        SetWeightDecay(weightDecay, normParameters, normWeightDecay);
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentException($"beta1 must be in [0, 1); got {beta1}.", nameof(beta1));
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentException($"beta2 must be in [0, 1); got {beta2}.", nameof(beta2));
        WeightDecay = weightDecay; Beta1 = beta1; Beta2 = beta2; Eps = eps;
        _m = new Tensor?[Parameters.Count];
        _v = new Tensor?[Parameters.Count];
    }

    /// <summary>Decoupled weight decay (of every parameter not exempted; see <see cref="TrainingOptimizer.ParameterWeightDecay"/>).</summary>
    public double WeightDecay { get; }
    /// <summary>First-moment decay.</summary>
    public double Beta1 { get; }
    /// <summary>Second-moment decay.</summary>
    public double Beta2 { get; }
    /// <summary>Denominator epsilon.</summary>
    public double Eps { get; }

    /// <inheritdoc/>
    protected override void Update(int index, Tensor parameter, Tensor grad, double learningRate)
    {
        _m[index] ??= zeros_like(parameter).DetachFromDisposeScope();
        _v[index] ??= zeros_like(parameter).DetachFromDisposeScope();
        var m = _m[index]!;
        var v = _v[index]!;
        double wd = ParameterWeightDecay[index];
        // Every Scalar is explicit and alive for the whole call (issue 17: an implicit one can be finalised mid-call).
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2 = 1 - Math.Pow(Beta2, StepCount);
        using var decay = (1 - learningRate * wd).ToScalar();
        using var beta1 = Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var sqrtBc2 = Math.Sqrt(bc2).ToScalar();
        using var eps = Eps.ToScalar();
        using var step = (-learningRate / bc1).ToScalar();
        if (wd != 0) parameter.mul_(decay);
        m.mul_(beta1).add_(grad, alpha: oneMinusBeta1);
        v.mul_(beta2).addcmul_(grad, grad, value: oneMinusBeta2);
        var denom = v.sqrt().div_(sqrtBc2).add_(eps, TorchScalars.One);
        parameter.addcdiv_(m, denom, value: step);
    }

    /// <inheritdoc/>
    public override IReadOnlyDictionary<string, Tensor> StateTensors() => Collect(("exp_avg/", _m), ("exp_avg_sq/", _v));

    /// <inheritdoc/>
    public override void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        Restore(_m, "exp_avg/", state);
        Restore(_v, "exp_avg_sq/", state);
        StepCount = stepCount;
    }
}
