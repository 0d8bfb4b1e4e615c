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
    /// <exception cref="ArgumentException">A coefficient is out of range.</exception>
    public AdamWOptimizer(IEnumerable<(string Name, Tensor Parameter)> parameters, double weightDecay = 1e-2, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8) : base(parameters)
    {
        if (!(weightDecay >= 0)) throw new ArgumentException($"Weight decay must be >= 0; got {weightDecay}.", nameof(weightDecay));
        if (!(beta1 >= 0 && beta1 < 1)) throw new ArgumentException($"beta1 must be in [0, 1); got {beta1}.", nameof(beta1));
        if (!(beta2 >= 0 && beta2 < 1)) throw new ArgumentException($"beta2 must be in [0, 1); got {beta2}.", nameof(beta2));
        WeightDecay = weightDecay; Beta1 = beta1; Beta2 = beta2; Eps = eps;
        _m = new Tensor?[Parameters.Count];
        _v = new Tensor?[Parameters.Count];
    }

    /// <summary>Decoupled weight decay.</summary>
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
        // Every Scalar is explicit and alive for the whole call (issue 17: an implicit one can be finalised mid-call).
        double bc1 = 1 - Math.Pow(Beta1, StepCount);
        double bc2 = 1 - Math.Pow(Beta2, StepCount);
        using var decay = (1 - learningRate * WeightDecay).ToScalar();
        using var beta1 = Beta1.ToScalar();
        using var oneMinusBeta1 = (1 - Beta1).ToScalar();
        using var beta2 = Beta2.ToScalar();
        using var oneMinusBeta2 = (1 - Beta2).ToScalar();
        using var sqrtBc2 = Math.Sqrt(bc2).ToScalar();
        using var eps = Eps.ToScalar();
        using var step = (-learningRate / bc1).ToScalar();
        if (WeightDecay != 0) parameter.mul_(decay);
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
