// TEMPORARY: the geometry branch owns this file; this copy only lets the model branch compile before the merge.
// Behaviour: torchvision 0.14 RetinaNet.postprocess_detections.
using RetinaSharp.Modeling;
using static TorchSharp.torch;

namespace RetinaSharp.Modeling.Pending;

internal sealed class RetinaNetPostProcessor(BoxCoder boxCoder, double scoreThreshold = 0.05, int topkCandidates = 1000, double nmsThreshold = 0.5, int detectionsPerImage = 100)
{
    public Detections Process(IReadOnlyList<Tensor> classLogitsPerLevel, IReadOnlyList<Tensor> boxDeltasPerLevel, IReadOnlyList<Tensor> anchorsPerLevel, (long H, long W) resizedImageSize)
    {
        using var scope = NewDisposeScope();
        var bs = new List<Tensor>(); var ss = new List<Tensor>(); var ls = new List<Tensor>();
        for (int l = 0; l < classLogitsPerLevel.Count; l++)
        {
            long k = classLogitsPerLevel[l].shape[1];
            var scores = sigmoid(classLogitsPerLevel[l]).flatten();
            var keep = scores.gt(scoreThreshold);
            scores = scores[keep];
            var idx = nonzero(keep).squeeze(1);
            long num = Math.Min(topkCandidates, idx.shape[0]);
            var (top, ti) = scores.topk((int)num);
            idx = idx[ti];
            var a = idx.div(k, rounding_mode: RoundingMode.floor);
            var lab = idx.remainder(k);
            var boxes = boxCoder.Decode(boxDeltasPerLevel[l][a], anchorsPerLevel[l][a]);
            bs.Add(BoxOps.ClipToImage(boxes, resizedImageSize.H, resizedImageSize.W)); ss.Add(top); ls.Add(lab);
        }
        var B = cat(bs, 0); var S = cat(ss, 0); var L = cat(ls, 0);
        var kept = NonMaxSuppression.Batched(B, S, L, nmsThreshold);
        kept = kept[..(int)Math.Min(detectionsPerImage, kept.shape[0])];
        return new Detections(B[kept].MoveToOuterDisposeScope(), S[kept].MoveToOuterDisposeScope(), L[kept].MoveToOuterDisposeScope());
    }
}
