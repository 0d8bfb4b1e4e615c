// The training-speed half of issue 18. On CPUs whose CPUID reports no cache sizes, oneDNN's backward convolution kernels
// crash or return NaN, so OneDnnMode.ForwardOnly left every backward pass to ATen's im2col path (about 5x slower than
// oneDNN: the ResNet-50 step of the train-step benchmark spent 8.7 s in backward against 1.5 s forward). Every gradient of
// a convolution is itself a forward convolution or a matrix product, and oneDNN's NCHW forward kernels are the ones that
// are safe there, so this function computes the backward pass from them:
//   dL/dx = conv2d(dL/dy dilated by the stride, W transposed and flipped, padding k-1-p)  (1x1: W^T dL/dy, a GEMM)
//   dL/dW = conv2d(x^T, (dL/dy)^T, padding p, dilation = stride), transposed back         (1x1: dL/dy x^T, a GEMM)
//   dL/db = dL/dy summed over batch and space
// (the identities of Dumoulin & Visin, "A guide to convolution arithmetic", 2016, section 4). Tiny feature maps (P7 at
// 1x1 and 2x2, where a tensor's layout is ambiguous and oneDNN picks its channels-last kernels) go through im2col and
// GEMMs without oneDNN instead; they cost nothing. 3x3 stride-1 convolutions whose channel counts are multiples of 16
// take oneDNN's own backward kernels, which are exact there (Runtime/NativeConvolutionGradients.cs).
// Measured on that machine (AMD EPYC Zen 5 VM, libtorch 2.10's oneDNN, fp32 NCHW, jit:avx512_core): forward convolutions
// whose input channels are above 16 and not a multiple of 16 return wrong values (188 of 1760 shapes in a sweep of
// 1-128 input channels, all of them with 17, 24, 27, 31, 36, 63 or 100; up to 100% relative error), while 1-16 and
// multiples of 16 are exact. Such inputs are zero-padded to the next multiple of 16 (an exact identity) before oneDNN
// sees them: the dL/dx convolution reads dL/dy with A·K channels (27 for 3 classes), the dL/dW one reads the batch as
// channels, and a user's FPN width may be any number.
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace RetinaSharp.Runtime;

/// <summary>
/// Runs RetinaSharp's 2-D convolutions. Where the machine's oneDNN backward kernels are unsafe
/// (<see cref="OneDnnMode.ForwardOnly"/>) and a gradient is needed, the convolution becomes a custom autograd node whose
/// backward pass is made of forward convolutions and GEMMs (<see cref="ConvolutionBackwardFunction"/>); otherwise it is the
/// module's own forward. The values are the same as libtorch's convolution backward up to float32 rounding. The node's
/// backward runs without grad, so second derivatives (<c>create_graph</c>) through it are not available.
/// </summary>
internal static class Convolutions
{
    /// <summary>
    /// Output of <paramref name="conv"/> on <paramref name="x"/> (N, C, H, W) → (N, O, H_out, W_out), with the backward
    /// pass described in <see cref="Convolutions"/> when it applies.
    /// </summary>
    public static Tensor Forward(Conv2d conv, Tensor x)
    {
        var w = conv.weight!;
        if (UsesForwardKernelBackward(x, w, conv))
            return Apply(x, w, conv.bias, conv.stride[0], conv.stride[1], conv.padding![0], conv.padding[1]);
        if (NeedsChannelPadding(x, w) && conv.groups == 1 && conv.padding_type is null && conv.padding_mode == PaddingModes.Zeros)
            return nn.functional.conv2d(PadChannels(x, 1), PadChannels(w, 1), conv.bias, strides: conv.stride, padding: conv.padding!, dilation: conv.dilation);
        return conv.forward(x);
    }

    /// <summary>
    /// True when oneDNN would read <paramref name="channels"/> input channels wrongly on a ForwardOnly machine (above 16
    /// and not a multiple of 16; see the measurement in this file's header).
    /// </summary>
    internal static bool UnsafeInputChannels(long channels) => channels > 16 && channels % 16 != 0;

    /// <summary>True on a ForwardOnly machine for a CPU convolution whose input channels oneDNN would read wrongly.</summary>
    private static bool NeedsChannelPadding(Tensor x, Tensor w) =>
        x.dim() == 4 && x.device_type == DeviceType.CPU && UnsafeInputChannels(w.shape[1])
        && TorchRuntime.OneDnn.Mode == OneDnnMode.ForwardOnly;

    /// <summary>
    /// <paramref name="t"/> with dimension <paramref name="dim"/> zero-padded to the next multiple of 16 when
    /// <see cref="UnsafeInputChannels"/> says so (a new tensor), else <paramref name="t"/> itself.
    /// </summary>
    internal static Tensor PadChannels(Tensor t, int dim)
    {
        long size = t.shape[dim];
        if (!UnsafeInputChannels(size)) return t;
        var shape = t.shape.ToArray();
        shape[dim] = (size + 15) / 16 * 16 - size;
        using var zero = zeros(shape, dtype: t.dtype, device: t.device);
        return cat([t, zero], dim);
    }

    /// <summary>
    /// <c>conv2d(x, weight, bias, stride, padding)</c> (dilation 1, one group) with the backward pass of
    /// <see cref="Convolutions"/> when it applies, else the plain functional call.
    /// </summary>
    public static Tensor Forward(Tensor x, Tensor weight, Tensor? bias, long stride, long padding)
    {
        if (UsesForwardKernelBackward(x, weight, null)) return Apply(x, weight, bias, stride, stride, padding, padding);
        if (NeedsChannelPadding(x, weight)) (x, weight) = (PadChannels(x, 1), PadChannels(weight, 1));
        return nn.functional.conv2d(x, weight, bias, strides: [stride, stride], padding: [padding, padding]);
    }

    private static Tensor Apply(Tensor x, Tensor w, Tensor? b, long sh, long sw, long ph, long pw)
    {
        bool gx = x.requires_grad, gw = w.requires_grad, gb = b is not null && b.requires_grad;
        var geometry = new ConvGeometry(sh, sw, ph, pw, gx, gw, gb);
        return b is null
            ? ConvolutionBackwardFunction.apply(x, w, geometry)
            : ConvolutionBackwardFunction.apply(x, w, geometry, b);
    }

    /// <summary>True when this convolution needs a gradient on a ForwardOnly machine and the function covers its form.</summary>
    private static bool UsesForwardKernelBackward(Tensor x, Tensor w, Conv2d? conv)
    {
        if (!is_grad_enabled() || !(x.requires_grad || w.requires_grad || (conv?.bias?.requires_grad ?? false))) return false;
        if (TorchRuntime.OneDnn.Mode != OneDnnMode.ForwardOnly) return false;
        if (x.device_type != DeviceType.CPU || x.dtype != ScalarType.Float32 || w.dtype != ScalarType.Float32 || x.dim() != 4) return false;
        if (conv is null) return true;
        return conv.groups == 1 && conv.dilation.All(d => d == 1) && (conv.padding_type is null or Padding.Valid)
            && conv.padding_mode == PaddingModes.Zeros && conv.padding is { Length: 2 } p && p[0] < conv.kernel_size[0] && p[1] < conv.kernel_size[1];
    }
}

/// <summary>Stride, padding and which inputs need gradients (the non-tensor arguments of the function).</summary>
internal sealed record ConvGeometry(long StrideH, long StrideW, long PadH, long PadW, bool InputGrad, bool WeightGrad, bool BiasGrad);

/// <summary>
/// Custom autograd node for a convolution: forward is libtorch's conv2d (oneDNN inside a network forward region);
/// backward computes dL/dx, dL/dW and dL/db from forward convolutions and GEMMs (see <see cref="Convolutions"/>).
/// Arguments of <c>apply</c>: x (N, C, H, W), weight (O, C, kh, kw), <see cref="ConvGeometry"/>, optionally bias (O).
/// </summary>
internal sealed class ConvolutionBackwardFunction : autograd.SingleTensorFunction<ConvolutionBackwardFunction>
{
    /// <summary>Below this many output or input positions per side, oneDNN is not used (ambiguous tiny layouts).</summary>
    internal const long TinySide = 3;

    /// <inheritdoc/>
    public override string Name => "ConvolutionBackwardFromForwardKernels";

    /// <inheritdoc/>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var x = (Tensor)vars[0];
        var w = (Tensor)vars[1];
        var g = (ConvGeometry)vars[2];
        var b = vars.Length > 3 ? (Tensor)vars[3] : null;
        ctx.save_for_backward([x, w]);
        ctx.save_data("g", g);
        ctx.save_data("bias", b is not null);
        using var scope = NewDisposeScope();
        var y = nn.functional.conv2d(Convolutions.PadChannels(x, 1), Convolutions.PadChannels(w, 1), b, strides: [g.StrideH, g.StrideW], padding: [g.PadH, g.PadW]);
        return y.MoveToOuterDisposeScope();
    }

    // TorchSharp hands backward new handles (saved tensors, the upstream gradient) and keeps the returned ones; left to the
    // finaliser, each would hold an activation-sized buffer until a garbage collection. The saved and upstream handles are
    // released when backward returns; the returned gradients when the next backward call of this thread starts (by then
    // libtorch has taken its own references), or when the backward region ends (ReleaseReturnedGradients).
    [ThreadStatic] private static List<Tensor>? _returned;

    /// <summary>Releases this thread's handles of gradients returned to libtorch by earlier backward calls.</summary>
    internal static void ReleaseReturnedGradients()
    {
        if (_returned is null) return;
        foreach (var t in _returned) t.Dispose();
        _returned.Clear();
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        ReleaseReturnedGradients();
        var saved = ctx.get_saved_variables();
        using var x = saved[0];
        using var w = saved[1];
        var g = (ConvGeometry)ctx.get_data("g");
        bool hasBias = (bool)ctx.get_data("bias");
        using var noGrad = no_grad();
        using var scope = NewDisposeScope();
        var grads = Gradients(x, w, gradOutput.contiguous(), g);
        gradOutput.Dispose();
        var result = new List<Tensor> { grads.Input?.MoveToOuterDisposeScope()!, grads.Weight?.MoveToOuterDisposeScope()!, null! };
        if (hasBias) result.Add(grads.Bias?.MoveToOuterDisposeScope()!);
        (_returned ??= []).AddRange(result.Where(t => t is not null));
        return result;
    }

    /// <summary>
    /// dL/dx (N, C, H, W), dL/dW (O, C, kh, kw) and dL/db (O) of y = conv2d(x, w, b, stride, padding) for upstream
    /// <paramref name="dy"/> (N, O, H_out, W_out); null where <paramref name="g"/> says no gradient is wanted.
    /// </summary>
    internal static (Tensor? Input, Tensor? Weight, Tensor? Bias) Gradients(Tensor x, Tensor w, Tensor dy, ConvGeometry g)
    {
        long n = x.shape[0], c = x.shape[1], h = x.shape[2], wd = x.shape[3];
        long o = w.shape[0], kh = w.shape[2], kw = w.shape[3];
        long ho = dy.shape[2], wo = dy.shape[3];
        bool tiny = Math.Min(ho, wo) < TinySide || Math.Min(h, wd) < TinySide;
        bool pointwise = kh == 1 && kw == 1 && g.PadH == 0 && g.PadW == 0;
        if (!tiny && NativeConvolutionGradients.Covers(x, w, g, TinySide))
        {
            // 3x3 stride 1, channels in multiples of 16: oneDNN's own backward kernels are exact here (NativeConvolutionGradients).
            using (TorchRuntime.ForwardKernelsInBackward())
            {
                var (nx, nw, nb) = NativeConvolutionGradients.Compute(x, w, dy, g);
                if (g.BiasGrad) return (nx, nw, nb);
                nb.Dispose();
                return (nx, nw, null);
            }
        }
        Tensor? dx = null, dw = null, db = null;
        if (g.BiasGrad) db = dy.sum([0, 2, 3]);
        if (pointwise)
        {
            // 1x1: a GEMM per image on the strided sample of x; no oneDNN involved.
            var dyFlat = dy.reshape(n, o, ho * wo);
            if (g.WeightGrad)
            {
                using var xs = Subsample(x, g.StrideH, g.StrideW, ho, wo).reshape(n, c, ho * wo);
                using var perImage = bmm(dyFlat, xs.transpose(1, 2));
                dw = perImage.sum(0L).reshape(o, c, 1, 1);
            }
            if (g.InputGrad)
            {
                using var w2 = w.reshape(o, c).t().contiguous(); // a contiguous W^T: MKL's GEMM is 2x faster on it
                var sampled = matmul(w2, dyFlat).reshape(n, c, ho, wo);
                if (g.StrideH == 1 && g.StrideW == 1 && ho == h && wo == wd) dx = sampled;
                else
                {
                    dx = zeros(n, c, h, wd, dtype: x.dtype);
                    using var target = Subsample(dx, g.StrideH, g.StrideW, ho, wo);
                    target.copy_(sampled);
                }
            }
            return (dx, dw, db);
        }
        if (tiny) return Im2Col(x, w, dy, g, db);
        using (TorchRuntime.ForwardKernelsInBackward())
        {
            if (g.WeightGrad)
            {
                // dW[o, c, i, j] = Σ_n,y,x dy[n, o, y, x] · x_pad[n, c, y·s + i, x·s + j]: a convolution of x^T by dy^T.
                using var xt = Convolutions.PadChannels(x.transpose(0, 1), 1).contiguous();
                using var dyt = Convolutions.PadChannels(dy.transpose(0, 1), 1).contiguous();
                using var full = nn.functional.conv2d(xt, dyt, strides: [1, 1], padding: [g.PadH, g.PadW], dilation: [g.StrideH, g.StrideW]);
                using var cut = full.narrow(2, 0, kh).narrow(3, 0, kw);
                dw = cut.transpose(0, 1).contiguous();
            }
            if (g.InputGrad)
            {
                // dx = dy dilated by the stride (zeros between), padded by k-1-p (plus the rows the forward never reached),
                // convolved with W transposed and flipped.
                long padTop = kh - 1 - g.PadH, padLeft = kw - 1 - g.PadW;
                long rowsLeft = h + 2 * g.PadH - kh - (ho - 1) * g.StrideH, colsLeft = wd + 2 * g.PadW - kw - (wo - 1) * g.StrideW;
                using var wf = Convolutions.PadChannels(w.transpose(0, 1).flip(2, 3), 1).contiguous();
                if (g.StrideH == 1 && g.StrideW == 1 && rowsLeft == 0 && colsLeft == 0)
                    dx = nn.functional.conv2d(Convolutions.PadChannels(dy, 1), wf, strides: [1, 1], padding: [padTop, padLeft]);
                else
                {
                    long hd = (ho - 1) * g.StrideH + 1 + 2 * padTop + rowsLeft, wdd = (wo - 1) * g.StrideW + 1 + 2 * padLeft + colsLeft;
                    // O padded to a safe channel count (zeros: the extra channels add nothing).
                    using var dilated = zeros(n, wf.shape[1], hd, wdd, dtype: dy.dtype);
                    using (var target = dilated.narrow(1, 0, o).slice(2, padTop, padTop + (ho - 1) * g.StrideH + 1, g.StrideH)
                               .slice(3, padLeft, padLeft + (wo - 1) * g.StrideW + 1, g.StrideW))
                        target.copy_(dy);
                    dx = nn.functional.conv2d(dilated, wf, strides: [1, 1]);
                }
            }
        }
        return (dx, dw, db);
    }

    /// <summary>Every ho-th/wo-th position of (N, C, H, W) at the stride: the (N, C, ho, wo) view a 1x1 convolution reads.</summary>
    private static Tensor Subsample(Tensor t, long sh, long sw, long ho, long wo) =>
        t.slice(2, 0, (ho - 1) * sh + 1, sh).slice(3, 0, (wo - 1) * sw + 1, sw);

    /// <summary>The gradients by im2col and GEMMs (libtorch's own kernels, no oneDNN), for tiny feature maps.</summary>
    private static (Tensor? Input, Tensor? Weight, Tensor? Bias) Im2Col(Tensor x, Tensor w, Tensor dy, ConvGeometry g, Tensor? db)
    {
        long n = x.shape[0], c = x.shape[1], o = w.shape[0], kh = w.shape[2], kw = w.shape[3];
        long l = dy.shape[2] * dy.shape[3];
        var dyFlat = dy.reshape(n, o, l);
        Tensor? dx = null, dw = null;
        if (g.WeightGrad)
        {
            using var cols = nn.functional.unfold(x, (kh, kw), padding: (g.PadH, g.PadW), stride: (g.StrideH, g.StrideW));
            using var perImage = bmm(dyFlat, cols.transpose(1, 2));
            dw = perImage.sum(0L).reshape(o, c, kh, kw);
        }
        if (g.InputGrad)
        {
            using var w2 = w.reshape(o, c * kh * kw).t();
            using var cols = matmul(w2, dyFlat);
            dx = nn.functional.fold(cols, (x.shape[2], x.shape[3]), (kh, kw), padding: (g.PadH, g.PadW), stride: (g.StrideH, g.StrideW));
        }
        return (dx, dw, db);
    }
}
