// Reference: the ONNX IR specification (docs/IR.md) and operator documentation (docs/Operators.md) for opsets
// 11-17; the messages are those of Export/onnx.proto3, compiled by Grpc.Tools' protoc into RetinaSharp.Export.Proto.
using System.Runtime.InteropServices;
using Google.Protobuf;
using RetinaSharp.Export.Proto;
using static TorchSharp.torch;

namespace RetinaSharp.Export;

/// <summary>
/// Builds one ONNX graph: constant tensors as initializers, nodes with readable names ("stage/part/op"), typed
/// inputs and outputs. Knows the few operator signatures that changed between opsets 11 and 17 (Unsqueeze and
/// Squeeze take their axes as an input from opset 13). Internal to the exporter.
/// </summary>
internal sealed class OnnxGraphBuilder
{
    private readonly GraphProto _graph = new();
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);        // values: inputs, initializers, node outputs
    private readonly HashSet<string> _nodeNames = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _constants = new(StringComparer.Ordinal);

    public OnnxGraphBuilder(string name, int opset)
    {
        _graph.Name = name;
        Opset = opset;
    }

    /// <summary>The default-domain opset the nodes follow.</summary>
    public int Opset { get; }

    public GraphProto Graph => _graph;

    /// <summary>A unique value name from <paramref name="name"/> (a suffix is added when taken).</summary>
    public string Unique(string name)
    {
        if (_names.Add(name)) return name;
        for (int i = 1; ; i++)
            if (_names.Add($"{name}_{i}")) return $"{name}_{i}";
    }

    private string UniqueNode(string name)
    {
        if (_nodeNames.Add(name)) return name;
        for (int i = 1; ; i++)
            if (_nodeNames.Add($"{name}_{i}")) return $"{name}_{i}";
    }

    public void Input(string name, TensorProto.Types.DataType type, params object[] dims) => _graph.Input.Add(Value(Unique(name), type, dims));

    public void Output(string name, TensorProto.Types.DataType type, params object[] dims) => _graph.Output.Add(Value(name, type, dims));

    /// <summary>An output of element type <paramref name="type"/> and unstated shape (the calibration graph's intermediate values).</summary>
    public void OutputAnyShape(string name, TensorProto.Types.DataType type) =>
        _graph.Output.Add(new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type } } });

    private static ValueInfoProto Value(string name, TensorProto.Types.DataType type, object[] dims)
    {
        var shape = new TensorShapeProto();
        foreach (var d in dims)
            shape.Dim.Add(d is string s ? new TensorShapeProto.Types.Dimension { DimParam = s } : new TensorShapeProto.Types.Dimension { DimValue = Convert.ToInt64(d) });
        return new ValueInfoProto { Name = name, Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)type, Shape = shape } } };
    }

    /// <summary>A float32 initializer with the values and shape of <paramref name="t"/> (any layout or dtype; copied as float32).</summary>
    public string Weight(string name, Tensor t)
    {
        using var scope = NewDisposeScope();
        var c = t.detach().to(ScalarType.Float32).cpu().contiguous();
        var values = c.numel() == 0 ? [] : c.data<float>().ToArray();
        return Add(name, TensorProto.Types.DataType.Float, c.shape, MemoryMarshal.AsBytes(values.AsSpan()));
    }

    /// <summary>A float32 initializer.</summary>
    public string Floats(string name, float[] values, params long[] dims) =>
        Add(name, TensorProto.Types.DataType.Float, dims, MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>An int64 initializer.</summary>
    public string Longs(string name, long[] values, params long[] dims) =>
        Add(name, TensorProto.Types.DataType.Int64, dims, MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>An int8 initializer.</summary>
    public string Int8s(string name, sbyte[] values, params long[] dims) =>
        Add(name, TensorProto.Types.DataType.Int8, dims, MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>A uint8 initializer.</summary>
    public string UInt8s(string name, byte[] values, params long[] dims) => Add(name, TensorProto.Types.DataType.Uint8, dims, values);

    /// <summary>An int32 initializer.</summary>
    public string Int32s(string name, int[] values, params long[] dims) =>
        Add(name, TensorProto.Types.DataType.Int32, dims, MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>A float64 initializer.</summary>
    public string Doubles(string name, double[] values, params long[] dims) =>
        Add(name, TensorProto.Types.DataType.Double, dims, MemoryMarshal.AsBytes(values.AsSpan()));

    /// <summary>A shared 1-D int64 constant (one initializer per distinct value list).</summary>
    public string LongVector(params long[] values) => Shared("const_i64_", string.Join("_", values).Replace('-', 'm'), n => Longs(n, values, values.Length));

    /// <summary>A shared int64 scalar constant.</summary>
    public string LongScalar(long value) => Shared("const_i64s_", value.ToString(System.Globalization.CultureInfo.InvariantCulture).Replace('-', 'm'), n => Longs(n, [value]));

    /// <summary>A shared float32 scalar constant.</summary>
    public string FloatScalar(float value) =>
        Shared("const_f32_", BitConverter.SingleToUInt32Bits(value).ToString("x8", System.Globalization.CultureInfo.InvariantCulture), n => Floats(n, [value]));

    /// <summary>A shared float64 scalar constant.</summary>
    public string DoubleScalar(double value) =>
        Shared("const_f64_", BitConverter.DoubleToUInt64Bits(value).ToString("x16", System.Globalization.CultureInfo.InvariantCulture), n => Doubles(n, [value]));

    private string Shared(string prefix, string key, Func<string, string> make)
    {
        if (_constants.TryGetValue(prefix + key, out var n)) return n;
        n = make(prefix + key);
        _constants[prefix + key] = n;
        return n;
    }

    private string Add(string name, TensorProto.Types.DataType type, long[] dims, ReadOnlySpan<byte> bytes)
    {
        var t = new TensorProto { Name = Unique(name), DataType = (int)type, RawData = ByteString.CopyFrom(bytes) };
        t.Dims.AddRange(dims);
        _graph.Initializer.Add(t);
        return t.Name;
    }

    /// <summary>Adds a node named <paramref name="name"/>; returns its outputs (named after the node).</summary>
    public string[] Node(string op, string name, string[] inputs, int outputs = 1, params AttributeProto[] attributes)
    {
        var node = new NodeProto { OpType = op, Name = UniqueNode(name) };
        node.Input.AddRange(inputs);
        for (int i = 0; i < outputs; i++) node.Output.Add(outputs == 1 ? Unique(name) : Unique($"{name}:{i}"));
        node.Attribute.AddRange(attributes);
        _graph.Node.Add(node);
        return [.. node.Output];
    }

    /// <summary>A one-output node.</summary>
    public string Op(string op, string name, params string[] inputs) => Node(op, name, inputs)[0];

    /// <summary>A one-output node with attributes.</summary>
    public string Op(string op, string name, string[] inputs, params AttributeProto[] attributes) => Node(op, name, inputs, 1, attributes)[0];

    /// <summary>Unsqueeze at <paramref name="axes"/> (attribute before opset 13, input from 13).</summary>
    public string Unsqueeze(string name, string x, params long[] axes) =>
        Opset >= 13 ? Op("Unsqueeze", name, x, LongVector(axes)) : Op("Unsqueeze", name, [x], Ints("axes", axes));

    /// <summary>Squeeze at <paramref name="axes"/> (attribute before opset 13, input from 13).</summary>
    public string Squeeze(string name, string x, params long[] axes) =>
        Opset >= 13 ? Op("Squeeze", name, x, LongVector(axes)) : Op("Squeeze", name, [x], Ints("axes", axes));

    /// <summary>Slice of <paramref name="x"/> along <paramref name="axis"/> from start to end.</summary>
    public string Slice(string name, string x, long axis, long start, long end) =>
        Op("Slice", name, x, LongVector(start), LongVector(end), LongVector(axis));

    /// <summary>x[..., index] along <paramref name="axis"/>, that axis removed (Gather with a scalar index).</summary>
    public string Take(string name, string x, long index, long axis) => Op("Gather", name, [x, LongScalar(index)], Int("axis", axis));

    /// <summary>Cast to <paramref name="to"/>.</summary>
    public string Cast(string name, string x, TensorProto.Types.DataType to) => Op("Cast", name, [x], Int("to", (long)to));

    public static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
    public static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };
    public static AttributeProto Str(string name, string v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.String, S = ByteString.CopyFromUtf8(v) };
    public static AttributeProto Ints(string name, params long[] v)
    {
        var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
        a.Ints.AddRange(v);
        return a;
    }
}
