// Reference: the ONNX QuantizeLinear / DequantizeLinear operators (opset 13: per-axis scales) and ONNX Runtime's
// documented static quantization (docs "Quantize ONNX models": QDQ format, uint8 activations with a zero point, int8
// symmetric weights per output channel, int32 bias at scale input_scale x weight_scale, min/max calibration). Learnt from
// the documentation; written here.
namespace RetinaSharp.Quantization;

/// <summary>The range of values one activation took over the calibration images.</summary>
/// <param name="Min">Smallest value seen.</param>
/// <param name="Max">Largest value seen (at least <paramref name="Min"/>).</param>
public readonly record struct ActivationRange(float Min, float Max)
{
    /// <summary>The uint8 quantisation of this range: the range widened to include 0 (so that 0, the padding value and
    /// ReLU's floor, is exact), scale = (max - min) / 255, zero point = round(-min / scale). A range of one value gets scale 1.</summary>
    /// <returns>Scale (float32, &gt; 0) and zero point (0..255): real = scale · (q - zero point).</returns>
    public (float Scale, byte ZeroPoint) ToUInt8()
    {
        float lo = MathF.Min(Min, 0), hi = MathF.Max(Max, 0);
        float scale = (hi - lo) / 255f;
        if (!(scale > 0) || !float.IsFinite(scale)) return (1f, 0);
        float zp = MathF.Round(-lo / scale);
        return (scale, (byte)Math.Clamp(zp, 0, 255));
    }
}

/// <summary>
/// What static int8 quantisation needs to know about a model: the range of every activation that a quantised
/// convolution reads or writes, measured on calibration images by <see cref="Int8Calibrator"/>. Keys are the
/// exporter's quantisation points ("preprocess", "backbone/layer1.0/relu1", "fpn/p3", "head/classification/p3/cls_logits", ...).
/// Give it to <see cref="Export.OnnxExportOptions.Int8"/> to write the quantised graph.
/// </summary>
public sealed class Int8Calibration
{
    /// <summary>A calibration of <paramref name="images"/> images with these ranges.</summary>
    /// <exception cref="ArgumentException">A range is not finite or has Min &gt; Max.</exception>
    public Int8Calibration(IReadOnlyDictionary<string, ActivationRange> ranges, int images)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        foreach (var (k, r) in ranges)
            if (!float.IsFinite(r.Min) || !float.IsFinite(r.Max) || r.Min > r.Max)
                throw new ArgumentException($"range of '{k}' is [{r.Min}, {r.Max}]: must be finite with min <= max", nameof(ranges));
        Ranges = ranges;
        Images = images;
    }

    /// <summary>Quantisation point → range of its values over the calibration images.</summary>
    public IReadOnlyDictionary<string, ActivationRange> Ranges { get; }

    /// <summary>How many images the ranges were measured on.</summary>
    public int Images { get; }

    /// <summary>The range of <paramref name="point"/>.</summary>
    /// <exception cref="ArgumentException">The calibration has no such point: it was measured on another architecture.</exception>
    public ActivationRange this[string point] => Ranges.TryGetValue(point, out var r) ? r
        : throw new ArgumentException($"OnnxExportOptions.Int8: the calibration has no range for '{point}': it was measured on a model of another architecture; calibrate this model", "Int8");

    /// <summary>One line for people and for the model's metadata.</summary>
    public override string ToString() =>
        $"int8 static (QDQ): uint8 activations per tensor (min/max of {Images} calibration image{(Images == 1 ? "" : "s")}), int8 symmetric weights per output channel, int32 bias";
}
