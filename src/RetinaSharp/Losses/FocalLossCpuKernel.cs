// The fused CPU pass of the sigmoid focal loss (Lin et al. 2017, "Focal Loss for Dense Object Detection",
// section 3.2 for the loss, appendix B for its derivative). Each logit and target is read once; the same pass
// adds the loss to a running sum (or writes it) and writes dFL/dx, so autograd's backward is one multiply.
// Values match torchvision.ops.sigmoid_focal_loss (0.14) but are computed in log-sigmoid form, never from
// clamped probabilities. With x_t = x for a positive and -x for a negative, p_t = sigmoid(x_t):
//   CE       = -log p_t           = max(-x_t, 0) + log1p(exp(-|x_t|))
//   (1-p_t)^g = exp(-g * softplus(x_t))   (q, q*q for g = 1, 2, 1 for g = 0)
//   FL       = a_t (1-p_t)^g CE
//   dFL/dx_t = -a_t (1-p_t)^g (g p_t CE + (1 - p_t))    finite for every g >= 0, also for 0 < g < 1
//   dFL/dx   = dFL/dx_t for a positive, -dFL/dx_t for a negative.

using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace RetinaSharp.Losses;

/// <summary>The settings of one fused focal-loss call (validated by <see cref="FocalLoss"/> before it gets here).</summary>
/// <param name="Alpha">α for positives (1 - α for negatives); null disables the weighting.</param>
/// <param name="Gamma">The focusing parameter γ >= 0.</param>
/// <param name="AlphaPerClass">Per-class α of length C (the logits' last dimension); overrides <paramref name="Alpha"/>.</param>
/// <param name="Reduction">How the element losses are reduced.</param>
/// <param name="Normalizer">The divisor of <see cref="FocalReduction.Normalized"/> (clamped to at least 1).</param>
internal sealed record FocalKernelOptions(double? Alpha, double Gamma, double[]? AlphaPerClass, FocalReduction Reduction, double Normalizer);

/// <summary>
/// One-pass, vectorised (System.Numerics.Vector), multi-threaded CPU kernel of the sigmoid focal loss and its
/// gradient for contiguous float32 / float64 CPU tensors. Work is cut into fixed blocks whose partial sums are
/// added in block order, so results do not depend on the thread count.
/// </summary>
internal static unsafe class FocalLossCpuKernel
{
    /// <summary>Elements per work block (the unit of parallelism and of the ordered partial sums).</summary>
    private const int BlockElements = 16384;

    /// <summary>Vectors accumulated in the working precision before they are folded into a double.</summary>
    private const int VectorsPerFold = 32;

    /// <summary>True when <paramref name="logits"/> can run on this kernel: CPU, float32/float64, under 2 GiB (the kernel itself needs a contiguous tensor).</summary>
    internal static bool Supports(Tensor logits) =>
        logits.device_type == DeviceType.CPU &&
        (logits.dtype == ScalarType.Float32 || logits.dtype == ScalarType.Float64) &&
        logits.numel() * (logits.dtype == ScalarType.Float32 ? 4L : 8L) <= int.MaxValue;

    /// <summary>
    /// Dense form: <paramref name="targets"/> holds 0/1 per logit (same shape, dtype and layout as <paramref name="logits"/>).
    /// Returns the reduced loss (a scalar, or a tensor shaped like the logits for <see cref="FocalReduction.None"/>) and,
    /// when <paramref name="computeGrad"/>, d(loss)/d(logits) for an upstream gradient of 1.
    /// </summary>
    /// <exception cref="ArgumentException">A target other than 0 or 1 (names "targets", the flat index and the value).</exception>
    internal static (Tensor Loss, Tensor? Grad) Dense(Tensor logits, Tensor targets, FocalKernelOptions o, bool computeGrad) =>
        logits.dtype == ScalarType.Float32
            ? Dense<float>(logits, targets, o, computeGrad)
            : Dense<double>(logits, targets, o, computeGrad);

    /// <summary>
    /// Index form: <paramref name="logits"/> is (N, C), <paramref name="classIndices"/> is (N) int64 contiguous CPU with
    /// 0..C-1 = foreground class, -1 = background, -2 = ignored (zero loss and zero gradient).
    /// </summary>
    /// <exception cref="ArgumentException">An index outside -2..C-1 (names "classIndices", the position and the value).</exception>
    internal static (Tensor Loss, Tensor? Grad) Indices(Tensor logits, Tensor classIndices, FocalKernelOptions o, bool computeGrad) =>
        logits.dtype == ScalarType.Float32
            ? Indices<float>(logits, classIndices, o, computeGrad)
            : Indices<double>(logits, classIndices, o, computeGrad);

    private static (Tensor, Tensor?) Dense<T>(Tensor logits, Tensor targets, FocalKernelOptions o, bool computeGrad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long n = logits.numel();
        int classes = logits.dim() == 0 ? 1 : (int)logits.shape[^1];
        double scale = Scale(o, n);
        var consts = new Consts<T>(o, scale, computeGrad);
        var (aPos, aNeg) = PerClassAlpha<T>(o);
        Tensor? grad = computeGrad ? empty_like(logits) : null;
        Tensor? lossOut = o.Reduction == FocalReduction.None ? empty_like(logits) : null;

        var p = new Pointers(Ptr(logits), Ptr(targets), Ptr(grad), Ptr(lossOut));
        // Per-class α needs whole rows; a scalar α lets blocks ignore row boundaries (fast for C = 1 too).
        long rowsPerBlock = Math.Max(1, BlockElements / Math.Max(1, classes));
        long blockLen = aPos is null ? BlockElements : rowsPerBlock * classes;
        int blocks = (int)((n + blockLen - 1) / blockLen);
        var partial = new double[blocks];
        var badAt = new long[blocks];
        RunBlocks(blocks, b =>
        {
            long start = b * blockLen, end = Math.Min(n, start + blockLen);
            double sum = 0;
            long bad = -1;
            if (aPos is null)
            {
                sum = DenseSegment(p.At<T>(p.X, start), p.At<T>(p.T, start), null, null, consts,
                    p.At<T>(p.G, start), p.At<T>(p.L, start), (int)(end - start), ref bad);
                if (bad >= 0) bad += start;
            }
            else
            {
                fixed (T* ap = aPos, an = aNeg)
                    for (long r = start; r < end && bad < 0; r += classes)
                    {
                        sum += DenseSegment(p.At<T>(p.X, r), p.At<T>(p.T, r), ap, an, consts,
                            p.At<T>(p.G, r), p.At<T>(p.L, r), classes, ref bad);
                        if (bad >= 0) bad += r;
                    }
            }
            partial[b] = sum;
            badAt[b] = bad;
        });
        foreach (long bad in badAt)
            if (bad >= 0)
            {
                double value = double.CreateTruncating(((T*)p.T)[bad]);
                throw new ArgumentException(
                    $"targets must be 0 or 1, but targets (flat index {bad}) is {value.ToString(System.Globalization.CultureInfo.InvariantCulture)}.", "targets");
            }
        return (lossOut ?? Total<T>(partial, scale, logits.dtype), grad);
    }

    private static (Tensor, Tensor?) Indices<T>(Tensor logits, Tensor classIndices, FocalKernelOptions o, bool computeGrad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        long rows = logits.shape[0];
        int classes = (int)logits.shape[1];
        long* idx = (long*)Ptr(classIndices);
        long valid = 0;
        for (long i = 0; i < rows; i++)
        {
            long c = idx[i];
            if (c < -2 || c >= classes)
                throw new ArgumentException(
                    $"classIndices must be in -2..{classes - 1} (-2 ignored, -1 background, 0..C-1 foreground class), but classIndices[{i}] is {c}.", "classIndices");
            if (c != -2) valid++;
        }
        double scale = Scale(o, valid * classes);
        var consts = new Consts<T>(o, scale, computeGrad);
        var (aPos, aNeg) = PerClassAlpha<T>(o);
        Tensor? grad = computeGrad ? empty_like(logits) : null;
        Tensor? lossOut = o.Reduction == FocalReduction.None ? empty_like(logits) : null;

        var p = new Pointers(Ptr(logits), (IntPtr)idx, Ptr(grad), Ptr(lossOut));
        long rowsPerBlock = Math.Max(1, BlockElements / Math.Max(1, classes));
        int blocks = (int)((rows + rowsPerBlock - 1) / rowsPerBlock);
        var partial = new double[blocks];
        RunBlocks(blocks, b =>
        {
            long start = b * rowsPerBlock, end = Math.Min(rows, start + rowsPerBlock);
            double sum = 0;
            fixed (T* ap = aPos, an = aNeg)
                for (long r = start; r < end; r++)
                {
                    long off = r * classes;
                    long c = ((long*)p.T)[r];
                    if (c == -2)
                    {
                        if (p.G != IntPtr.Zero) new Span<T>(p.At<T>(p.G, off), classes).Clear();
                        if (p.L != IntPtr.Zero) new Span<T>(p.At<T>(p.L, off), classes).Clear();
                        continue;
                    }
                    sum += IndexRow(p.At<T>(p.X, off), c, ap, an, consts, p.At<T>(p.G, off), p.At<T>(p.L, off), classes);
                }
            partial[b] = sum;
        });
        return (lossOut ?? Total<T>(partial, scale, logits.dtype), grad);
    }

    /// <summary>Raw pointers of one call, kept as IntPtr so the block lambda can capture them.</summary>
    private readonly record struct Pointers(IntPtr X, IntPtr T, IntPtr G, IntPtr L)
    {
        public TE* At<TE>(IntPtr basePtr, long offset) where TE : unmanaged =>
            basePtr == IntPtr.Zero ? null : (TE*)basePtr + offset;
    }

    /// <summary>The per-call constants, broadcast into vectors once.</summary>
    private readonly struct Consts<T> where T : unmanaged, IFloatingPointIeee754<T>
    {
        public readonly Vector<T> APos, ANeg, Gamma, Scale;
        public readonly T GammaScalar;
        /// <summary>0: γ = 0; 1: γ = 1; 2: γ = 2; 3: any other γ (exp form).</summary>
        public readonly int Mode;
        public readonly bool Grad;

        public Consts(FocalKernelOptions o, double scale, bool grad)
        {
            double a = o.Alpha ?? 0.5;
            double aPos = o.Alpha.HasValue ? a : 1.0, aNeg = o.Alpha.HasValue ? 1.0 - a : 1.0;
            APos = new Vector<T>(T.CreateChecked(aPos));
            ANeg = new Vector<T>(T.CreateChecked(aNeg));
            GammaScalar = T.CreateChecked(o.Gamma);
            Gamma = new Vector<T>(GammaScalar);
            Scale = new Vector<T>(T.CreateChecked(scale));
            Mode = o.Gamma == 0 ? 0 : o.Gamma == 1 ? 1 : o.Gamma == 2 ? 2 : 3;
            Grad = grad;
        }
    }

    /// <summary>Loss (returned) and scaled gradient (<paramref name="dx"/>) of one vector of logits.</summary>
    /// <param name="x">Logits.</param>
    /// <param name="pos">All-ones lanes where the target is 1, zero lanes where it is 0.</param>
    /// <param name="aPos">α_t of positive lanes.</param>
    /// <param name="aNeg">α_t of negative lanes.</param>
    /// <param name="k">The call's constants (γ, reduction scale, whether to compute the gradient).</param>
    /// <param name="dx">d(loss)/dx times the reduction scale; default when no gradient is asked for.</param>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Eval<T>(Vector<T> x, Vector<T> pos, Vector<T> aPos, Vector<T> aNeg, in Consts<T> k, out Vector<T> dx)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        var one = Vector<T>.One;
        var zero = Vector<T>.Zero;
        var z = Vector.ConditionalSelect(pos, x, -x);                 // x_t
        var e = Exp(-Vector.Abs(z));                                  // exp(-|x_t|) in (0, 1]
        var u = one + e;
        var inv = one / u;                                            // sigmoid(|x_t|)
        var l = Log1PUnit(e, u, inv);                                 // log1p(e)
        var ei = e * inv;                                             // sigmoid(-|x_t|)
        var nonNeg = Vector.GreaterThanOrEqual(z, zero);
        var q = Vector.ConditionalSelect(nonNeg, ei, inv);            // 1 - p_t
        var ce = Vector.Max(-z, zero) + l;                            // -log p_t
        var mod = k.Mode switch
        {
            0 => one,
            1 => q,
            2 => q * q,
            _ => Exp(-(k.Gamma * (Vector.Max(z, zero) + l))),         // (1 - p_t)^γ = exp(-γ softplus(x_t))
        };
        var w = Vector.ConditionalSelect(pos, aPos, aNeg) * mod;
        if (k.Grad)
        {
            var pt = Vector.ConditionalSelect(nonNeg, inv, ei);       // p_t
            var inner = k.Mode == 0 ? q : k.Gamma * (pt * ce) + q;
            var g = w * inner * k.Scale;                              // -dFL/dx_t
            dx = Vector.ConditionalSelect(pos, -g, g);
        }
        else
        {
            dx = default;
        }
        return w * ce;
    }

    /// <summary>A contiguous run of dense elements; <paramref name="aPos"/>/<paramref name="aNeg"/> are per-element (one row) or null for the scalar α.</summary>
    private static double DenseSegment<T>(T* x, T* t, T* aPos, T* aNeg, in Consts<T> k, T* g, T* l, int len, ref long bad)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector<T>.Count;
        var one = Vector<T>.One;
        var zero = Vector<T>.Zero;
        var acc = Vector<T>.Zero;
        double total = 0;
        int i = 0, folded = 0;
        for (; i <= len - w; i += w)
        {
            var tv = Vector.Load(t + i);
            var pos = Vector.Equals(tv, one);
            if (!Vector.EqualsAll(Vector.As<T, byte>(pos | Vector.Equals(tv, zero)), Vector<byte>.AllBitsSet))
            {
                bad = FirstNonBinary(t + i, w) + i;
                return double.NaN;
            }
            var ap = aPos == null ? k.APos : Vector.Load(aPos + i);
            var an = aNeg == null ? k.ANeg : Vector.Load(aNeg + i);
            var loss = Eval(Vector.Load(x + i), pos, ap, an, k, out var dx);
            if (g != null) dx.Store(g + i);
            if (l != null) loss.Store(l + i);
            acc += loss;
            if (++folded == VectorsPerFold)
            {
                total += double.CreateTruncating(Vector.Sum(acc));
                acc = Vector<T>.Zero;
                folded = 0;
            }
        }
        total += double.CreateTruncating(Vector.Sum(acc));
        int rem = len - i;
        if (rem > 0)
        {
            // The tail runs through the same vector code on a zero-padded copy, so every element sees identical math.
            T* bx = stackalloc T[w], bt = stackalloc T[w], bp = stackalloc T[w], bn = stackalloc T[w], bl = stackalloc T[w], bg = stackalloc T[w];
            for (int j = 0; j < w; j++)
            {
                bx[j] = j < rem ? x[i + j] : T.Zero;
                bt[j] = j < rem ? t[i + j] : T.Zero;
                bp[j] = aPos != null && j < rem ? aPos[i + j] : T.One;
                bn[j] = aNeg != null && j < rem ? aNeg[i + j] : T.One;
            }
            int firstBad = FirstNonBinary(bt, rem);
            if (firstBad >= 0)
            {
                bad = firstBad + i;
                return double.NaN;
            }
            var pos = Vector.Equals(Vector.Load(bt), one);
            var loss = Eval(Vector.Load(bx), pos, aPos == null ? k.APos : Vector.Load(bp), aNeg == null ? k.ANeg : Vector.Load(bn), k, out var dx);
            loss.Store(bl);
            dx.Store(bg);
            for (int j = 0; j < rem; j++)
            {
                total += double.CreateTruncating(bl[j]);
                if (g != null) g[i + j] = bg[j];
                if (l != null) l[i + j] = bl[j];
            }
        }
        return total;
    }

    /// <summary>One row of the index form: class <paramref name="cls"/> (or -1 = none) is the only positive column.</summary>
    private static double IndexRow<T>(T* x, long cls, T* aPos, T* aNeg, in Consts<T> k, T* g, T* l, int len)
        where T : unmanaged, IFloatingPointIeee754<T>
    {
        int w = Vector<T>.Count;
        var clsVec = new Vector<T>(T.CreateChecked(cls));
        var step = new Vector<T>(T.CreateChecked(w));
        var col = Iota<T>();
        var acc = Vector<T>.Zero;
        int i = 0;
        for (; i <= len - w; i += w, col += step)
        {
            var pos = Vector.Equals(col, clsVec);
            var ap = aPos == null ? k.APos : Vector.Load(aPos + i);
            var an = aNeg == null ? k.ANeg : Vector.Load(aNeg + i);
            var loss = Eval(Vector.Load(x + i), pos, ap, an, k, out var dx);
            if (g != null) dx.Store(g + i);
            if (l != null) loss.Store(l + i);
            acc += loss;
        }
        double total = double.CreateTruncating(Vector.Sum(acc));
        int rem = len - i;
        if (rem > 0)
        {
            T* bx = stackalloc T[w], bp = stackalloc T[w], bn = stackalloc T[w], bl = stackalloc T[w], bg = stackalloc T[w];
            for (int j = 0; j < w; j++)
            {
                bx[j] = j < rem ? x[i + j] : T.Zero;
                bp[j] = aPos != null && j < rem ? aPos[i + j] : T.One;
                bn[j] = aNeg != null && j < rem ? aNeg[i + j] : T.One;
            }
            var pos = Vector.Equals(col, clsVec);
            var loss = Eval(Vector.Load(bx), pos, aPos == null ? k.APos : Vector.Load(bp), aNeg == null ? k.ANeg : Vector.Load(bn), k, out var dx);
            loss.Store(bl);
            dx.Store(bg);
            for (int j = 0; j < rem; j++)
            {
                total += double.CreateTruncating(bl[j]);
                if (g != null) g[i + j] = bg[j];
                if (l != null) l[i + j] = bl[j];
            }
        }
        return total;
    }

    private static int FirstNonBinary<T>(T* t, int count) where T : unmanaged, IFloatingPointIeee754<T>
    {
        for (int j = 0; j < count; j++)
            if (t[j] != T.Zero && t[j] != T.One) return j;
        return -1;
    }

    private static Vector<T> Iota<T>() where T : unmanaged, IFloatingPointIeee754<T>
    {
        Span<T> s = stackalloc T[Vector<T>.Count];
        for (int j = 0; j < s.Length; j++) s[j] = T.CreateChecked(j);
        return new Vector<T>(s);
    }

    /// <summary>exp(v) for v &lt;= 0 (the only arguments the kernel needs): float32 uses <see cref="ExpNonPositive"/>, float64 the runtime's Vector.Exp.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Exp<T>(Vector<T> v) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float)) return Vector.As<float, T>(ExpNonPositive(Vector.As<T, float>(v)));
        return Vector.As<double, T>(Vector.Exp(Vector.As<T, double>(v)));
    }

    /// <summary>
    /// log1p(e) for e in [0, 1], given u = 1 + e and inv = 1 / u. float32: e·P(e) with a degree-9 polynomial fitted to
    /// log1p(e)/e on [0, 1] (max relative error 2e-7 evaluated in float32). float64: log(u) plus the rounding error of
    /// u = fl(1 + e) divided by u (first-order correction, about one ulp; equals e when 1 + e rounds to 1).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<T> Log1PUnit<T>(Vector<T> e, Vector<T> u, Vector<T> inv) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (typeof(T) == typeof(float))
        {
            var x = Vector.As<T, float>(e);
            var p = new Vector<float>(-0.003256378462538123f);
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(0.019907161593437195f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(-0.057064201682806015f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(0.10614264756441116f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(-0.15311862528324127f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(0.19678117334842682f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(-0.24954558908939362f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(0.33330005407333374f));
            p = Vector.FusedMultiplyAdd(p, x, new Vector<float>(-0.4999990463256836f));
            p = Vector.FusedMultiplyAdd(p, x, Vector<float>.One);
            return Vector.As<float, T>(p * x);
        }
        var ud = Vector.As<T, double>(u);
        return Vector.As<double, T>(Vector.Log(ud) + (Vector.As<T, double>(e) - (ud - Vector<double>.One)) * Vector.As<T, double>(inv));
    }

    /// <summary>
    /// exp(x) in float32 for x &lt;= 0: Cody-Waite reduction x = n ln2 + r, |r| &lt;= ln2/2, the classic degree-6
    /// polynomial of Cephes' expf for e^r, then scaling by 2^n through the exponent bits. About one ulp;
    /// 0 below -87.3 (where the result would be subnormal); NaN stays NaN.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static Vector<float> ExpNonPositive(Vector<float> x)
    {
        var lo = new Vector<float>(-87.3f);
        var xc = Vector.Max(x, lo);
        var n = Vector.Floor(Vector.FusedMultiplyAdd(xc, new Vector<float>(1.44269504088896341f), new Vector<float>(0.5f)));
        var r = Vector.FusedMultiplyAdd(n, new Vector<float>(-0.693359375f), xc);
        r = Vector.FusedMultiplyAdd(n, new Vector<float>(2.12194440e-4f), r);
        var y = new Vector<float>(1.9875691500e-4f);
        y = Vector.FusedMultiplyAdd(y, r, new Vector<float>(1.3981999507e-3f));
        y = Vector.FusedMultiplyAdd(y, r, new Vector<float>(8.3334519073e-3f));
        y = Vector.FusedMultiplyAdd(y, r, new Vector<float>(4.1665795894e-2f));
        y = Vector.FusedMultiplyAdd(y, r, new Vector<float>(1.6666665459e-1f));
        y = Vector.FusedMultiplyAdd(y, r, new Vector<float>(5.0000001201e-1f));
        y = Vector.FusedMultiplyAdd(y, r * r, r) + Vector<float>.One;
        var pow2 = Vector.AsVectorSingle(Vector.ShiftLeft(Vector.ConvertToInt32(n) + new Vector<int>(127), 23));
        var result = Vector.ConditionalSelect(Vector.LessThan(x, lo), Vector<float>.Zero, y * pow2);
        return Vector.ConditionalSelect(Vector.Equals(x, x), result, x);   // NaN in, NaN out
    }

    /// <summary>1 for none/sum, 1/max(1, count) for mean, 1/max(1, normalizer) for normalized.</summary>
    private static double Scale(FocalKernelOptions o, long count) => o.Reduction switch
    {
        FocalReduction.Mean => 1.0 / Math.Max(1, count),
        FocalReduction.Normalized => 1.0 / Math.Max(1.0, o.Normalizer),
        _ => 1.0,
    };

    private static (T[]? Pos, T[]? Neg) PerClassAlpha<T>(FocalKernelOptions o) where T : unmanaged, IFloatingPointIeee754<T>
    {
        if (o.AlphaPerClass is null) return (null, null);
        var pos = new T[o.AlphaPerClass.Length];
        var neg = new T[o.AlphaPerClass.Length];
        for (int c = 0; c < pos.Length; c++)
        {
            pos[c] = T.CreateChecked(o.AlphaPerClass[c]);
            neg[c] = T.CreateChecked(1.0 - o.AlphaPerClass[c]);
        }
        return (pos, neg);
    }

    private static Tensor Total<T>(double[] partial, double scale, ScalarType dtype)
    {
        double sum = 0;
        foreach (double s in partial) sum += s;   // block order: independent of the thread count
        return tensor(sum * scale, dtype);
    }

    private static void RunBlocks(int blocks, Action<int> body)
    {
        int threads = Math.Max(1, torch.get_num_threads());
        if (blocks <= 1 || threads == 1)
        {
            for (int b = 0; b < blocks; b++) body(b);
            return;
        }
        Parallel.For(0, blocks, new ParallelOptions { MaxDegreeOfParallelism = threads }, body);
    }

    private static IntPtr Ptr(Tensor? t)
    {
        if (t is null || t.numel() == 0) return IntPtr.Zero;
        return (IntPtr)Unsafe.AsPointer(ref MemoryMarshal.GetReference(t.bytes));
    }
}
