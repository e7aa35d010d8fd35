// @llms-eye/models: Hugging Face compatible GPT-2 and CLIP on the tensor engine and autograd.
export {
  SafetensorsError, DTYPE_SIZE, readSafetensorsHeader, readSafetensors, forEachTensor, writeSafetensors, writeSafetensorsFrom, type WritableData, type WritableTensor,
  type SafeDType, type HostTensor, type TensorInfo, type SafetensorsHeader, type TensorSource,
} from "./safetensors.js";
export {
  ConfigError, parseGPT2Config, parseCLIPConfig, readConfig,
  type GPT2Config, type CLIPConfig, type CLIPVisionConfig, type CLIPTextConfig,
} from "./config.js";
export { loadCheckpoint, loadPretrained, saveCheckpoint, type LoadOptions, type LoadResult } from "./checkpoint.js";
export { HubError, hubCacheDir, resolveModel, type ResolveOptions, type HubErrorKind } from "./hub.js";
export {
  IMAGE_TOKEN, TokenizerError, loadTokenizer, bundledGPT2TokenizerDir, eyeTokenizer, tokenizerFromJson, buildTokenizerJson, cleanUpTokenization,
  type Tokenizer, type TokenizerKind, type EncodeOptions, type DecodeOptions, type TokenizerJson,
} from "./tokenizer.js";
export {
  GPT2LMHeadModel, GPT2Model, GPT2Block, GPT2Attention, GPT2MLP, KVCache, gpt2CheckpointKey,
  type GPT2Input, type GPT2Output, type GPT2InitOptions,
} from "./gpt2.js";
export {
  generate, gpt2Decoder, warpLogits, logSoftmax, argmax, positionIdsFromMask,
  type GenerateOptions, type NextTokenModel, type Strategy,
} from "./generate.js";
export {
  CLIPVisionModel, CLIPVisionTransformer, CLIP_VISION_KEYS,
  type CLIPVisionForwardOptions, type CLIPVisionOutput, type CLIPVisionModelOutput,
} from "./clip-vision.js";
export {
  CLIPTextModel, CLIPTextTransformer, CLIP_TEXT_KEYS,
  type CLIPTextForwardOptions, type CLIPTextOutput, type CLIPTextModelOutput, type TokenRows,
} from "./clip-text.js";
export { CLIPModel, type CLIPOutput } from "./clip.js";
export { runParity, ParityError, PARITY_GROUPS, PARITY_TOLERANCES, PREPROCESS_SKIPPED, type ParityGroup, type ParityOptions, type ParityResult, type ParityRow } from "./parity.js";
export * from "./real-configs.js";
export {
  EYE_SIZES, EYE_REPOS, EYE_VOCAB, TINY_VOCAB_ROWS, EYE_IMAGE_ID, EYE_EOS_ID, eyeVocab, tinyEyeConfig, imageTokenCount, checkEyeConfig, parseEyeConfig,
  type EyeConfig, type EyeSize,
} from "./eye-config.js";
export { eyeBatchIds, placeholderIndex, type EyeBatchIds, type EyeTokens } from "./eye-batch.js";
export { EyeModel, EyeProjector, resizeTokenEmbeddings, type EyeLosses, type EyeInitOptions } from "./eye.js";
export { eyeDecoder, captionIds, imageEmbeddings, textEmbeddings, type CaptionOptions } from "./eye-generate.js";
export { EYE_FILES, buildEyeModel, saveEyeModel, loadEyeModel, writeEyeModelFiles, writeDirAtomic, clipPreprocessorConfig, type BuiltEyeModel } from "./eye-load.js";
