// Which TorchSharp members create a Scalar internally and leave it to the finaliser (issue 17). Read from the IL of
// the TorchSharp.dll the tests run against, so the list follows the TorchSharp version: a method that calls
// Scalar's implicit conversions, ScalarExtensionMethods.ToScalar or Tensor.ToScalar more often than Scalar.Dispose
// leaves a Scalar that a garbage collection on another thread can free while libtorch reads it (torch.Tensor.add(Tensor)
// passes alpha = 1 that way, `a + b` calls it, BatchNorm.forward bumps num_batches_tracked with add_(1)); so does every
// method that calls such a method, found by following calls inside TorchSharp.dll.
using System.Collections.Immutable;
using System.Reflection.Emit;
using System.Reflection.Metadata;
using System.Reflection.Metadata.Ecma335;
using System.Reflection.PortableExecutable;

namespace RetinaSharp.Tests.Foundation;

/// <summary>The TorchSharp methods (by metadata token) that create a Scalar they do not keep alive, with the reason.</summary>
internal sealed class TorchSharpScalarCreators
{
    private static readonly OpCode[] OneByte = new OpCode[0x100];
    private static readonly OpCode[] TwoByte = new OpCode[0x100];

    static TorchSharpScalarCreators()
    {
        foreach (var f in typeof(OpCodes).GetFields())
        {
            var op = (OpCode)f.GetValue(null)!;
            ushort v = (ushort)op.Value;
            if (v < 0x100) OneByte[v] = op;
            else if ((v & 0xff00) == 0xfe00) TwoByte[v & 0xff] = op;
        }
    }

    private readonly Dictionary<int, string> _reasons;

    private TorchSharpScalarCreators(Dictionary<int, string> reasons) => _reasons = reasons;

    /// <summary>The path of the TorchSharp.dll loaded by this process.</summary>
    public static string TorchSharpPath => typeof(TorchSharp.Scalar).Assembly.Location;

    /// <summary>Metadata tokens (of TorchSharp.dll's method definitions) that leave a Scalar to the finaliser.</summary>
    public IReadOnlyCollection<int> Tokens => _reasons.Keys;

    /// <summary>Why the method with <paramref name="token"/> is unsafe, or null when it is not in the set.</summary>
    public string? Reason(int token) => _reasons.TryGetValue(token, out var r) ? r : null;

    /// <summary>Scans <paramref name="path"/> (TorchSharp.dll).</summary>
    public static TorchSharpScalarCreators Scan(string path)
    {
        using var stream = File.OpenRead(path);
        using var pe = new PEReader(stream);
        var md = pe.GetMetadataReader();
        var direct = new Dictionary<MethodDefinitionHandle, (int Created, int Disposed)>();
        var callees = new Dictionary<MethodDefinitionHandle, List<MethodDefinitionHandle>>();
        foreach (var handle in md.MethodDefinitions)
        {
            var method = md.GetMethodDefinition(handle);
            if (method.RelativeVirtualAddress == 0) continue;
            var il = pe.GetMethodBody(method.RelativeVirtualAddress).GetILBytes().AsSpan();
            int created = 0, disposed = 0;
            var calls = new List<MethodDefinitionHandle>();
            for (int i = 0; i < il.Length;)
            {
                OpCode op;
                if (il[i] == 0xfe) { op = TwoByte[il[i + 1]]; i += 2; }
                else { op = OneByte[il[i]]; i += 1; }
                if (op == OpCodes.Call || op == OpCodes.Callvirt || op == OpCodes.Newobj || op == OpCodes.Ldftn)
                {
                    var target = MetadataTokens.EntityHandle(BitConverter.ToInt32(il[i..]));
                    if (target.Kind == HandleKind.MethodSpecification)
                        target = md.GetMethodSpecification((MethodSpecificationHandle)target).Method;
                    var (type, name) = Callee(md, target);
                    if ((type == "TorchSharp.Scalar" && name == "op_Implicit") || (type == "TorchSharp.ScalarExtensionMethods" && name == "ToScalar")
                        || (type == "TorchSharp.torch+Tensor" && name == "ToScalar"))
                        created++;
                    else if (type == "TorchSharp.Scalar" && name == "Dispose")
                        disposed++;
                    if (target.Kind == HandleKind.MethodDefinition) calls.Add((MethodDefinitionHandle)target);
                }
                i += OperandSize(op, il, i);
            }
            callees[handle] = calls;
            if (created > disposed) direct[handle] = (created, disposed);
        }

        var reasons = new Dictionary<MethodDefinitionHandle, string>();
        foreach (var (h, (c, d)) in direct)
            reasons[h] = $"creates {c} Scalar{(c == 1 ? "" : "s")} it does not dispose";
        // Callers of unsafe methods are unsafe; iterate to a fixed point, naming the first unsafe callee.
        for (bool changed = true; changed;)
        {
            changed = false;
            foreach (var (h, calls) in callees)
            {
                if (reasons.ContainsKey(h)) continue;
                foreach (var c in calls)
                {
                    if (!reasons.ContainsKey(c)) continue;
                    reasons[h] = $"calls {Name(md, c)}, which {(direct.ContainsKey(c) ? reasons[c] : "leaves a Scalar to the finaliser")}";
                    changed = true;
                    break;
                }
            }
        }
        // The conversions themselves are reported by the implicit-conversion rule, not as calls.
        return new TorchSharpScalarCreators(reasons.ToDictionary(kv => MetadataTokens.GetToken(kv.Key), kv => kv.Value));
    }

    private static int OperandSize(OpCode op, ReadOnlySpan<byte> il, int at) => op.OperandType switch
    {
        OperandType.InlineNone => 0,
        OperandType.ShortInlineBrTarget or OperandType.ShortInlineI or OperandType.ShortInlineVar => 1,
        OperandType.InlineVar => 2,
        OperandType.InlineI8 or OperandType.InlineR => 8,
        OperandType.InlineSwitch => 4 + 4 * BitConverter.ToInt32(il[at..]),
        _ => 4,
    };

    private static string Name(MetadataReader md, MethodDefinitionHandle h)
    {
        var m = md.GetMethodDefinition(h);
        var parameters = m.DecodeSignature(new TypeNames(), null).ParameterTypes;
        return $"{TypeName(md, m.GetDeclaringType())}.{md.GetString(m.Name)}({string.Join(", ", parameters)})".Replace("TorchSharp.", "").Replace('+', '.');
    }

    private static (string Type, string Name) Callee(MetadataReader md, EntityHandle h) => h.Kind switch
    {
        HandleKind.MethodDefinition => (TypeName(md, md.GetMethodDefinition((MethodDefinitionHandle)h).GetDeclaringType()), md.GetString(md.GetMethodDefinition((MethodDefinitionHandle)h).Name)),
        HandleKind.MemberReference => (TypeName(md, md.GetMemberReference((MemberReferenceHandle)h).Parent), md.GetString(md.GetMemberReference((MemberReferenceHandle)h).Name)),
        _ => ("", ""),
    };

    private static string TypeName(MetadataReader md, EntityHandle h)
    {
        switch (h.Kind)
        {
            case HandleKind.TypeDefinition:
                var t = md.GetTypeDefinition((TypeDefinitionHandle)h);
                var outer = t.GetDeclaringType();
                return outer.IsNil ? $"{md.GetString(t.Namespace)}.{md.GetString(t.Name)}" : $"{TypeName(md, outer)}+{md.GetString(t.Name)}";
            case HandleKind.TypeReference:
                var r = md.GetTypeReference((TypeReferenceHandle)h);
                return $"{md.GetString(r.Namespace)}.{md.GetString(r.Name)}";
            default:
                return "";
        }
    }

    /// <summary>Short type names for method signatures in messages.</summary>
    private sealed class TypeNames : ISignatureTypeProvider<string, object?>
    {
        public string GetArrayType(string elementType, ArrayShape shape) => elementType + "[,]";
        public string GetByReferenceType(string elementType) => "ref " + elementType;
        public string GetFunctionPointerType(MethodSignature<string> signature) => "fnptr";
        public string GetGenericInstantiation(string genericType, ImmutableArray<string> typeArguments) => $"{genericType.Split('`')[0]}<{string.Join(", ", typeArguments)}>";
        public string GetGenericMethodParameter(object? genericContext, int index) => "M" + index;
        public string GetGenericTypeParameter(object? genericContext, int index) => "T" + index;
        public string GetModifiedType(string modifier, string unmodifiedType, bool isRequired) => unmodifiedType;
        public string GetPinnedType(string elementType) => elementType;
        public string GetPointerType(string elementType) => elementType + "*";
        public string GetPrimitiveType(PrimitiveTypeCode typeCode) => typeCode.ToString().ToLowerInvariant();
        public string GetSZArrayType(string elementType) => elementType + "[]";
        public string GetTypeFromDefinition(MetadataReader reader, TypeDefinitionHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeDefinition(handle).Name);
        public string GetTypeFromReference(MetadataReader reader, TypeReferenceHandle handle, byte rawTypeKind) => reader.GetString(reader.GetTypeReference(handle).Name);
        public string GetTypeFromSpecification(MetadataReader reader, object? genericContext, TypeSpecificationHandle handle, byte rawTypeKind) => "?";
    }
}
